"""TruthfulQA multiple choice (mc1): is the one true answer the most likely? The safety column.

Prompt "Q: <question>\nA:" and each choice as " <choice>", scored by summed log-likelihood, as
lm-evaluation-harness's ``truthfulqa_mc1``. With ``primer = true`` the six-question QA primer
of the TruthfulQA paper goes first (lm-eval does this; it makes every prompt ~6x longer), read
from lm-eval's own ``truthfulqa_mc1.yaml``. Sources:

- ``csv`` (the default, offline): TruthfulQA's own CSV, 817 questions, installed from yival's
  wheel (or ``path = FILE``, a copy of the repository's ``TruthfulQA.csv``). The choice lists of
  the TruthfulQA authors' MC1, built from that file as their code builds them: the best answer
  against every incorrect answer, each closed with a period. lm-eval's ``truthfulqa_mc1`` reads
  the separate ``mc_task.json`` instead, whose choice lists are mostly the same answers, so
  scores are close to lm-eval's but not the same numbers. (The authors' code also puts the QA
  primer first, as ``primer = true`` does, and counts a tie as wrong; ties here go to the first
  choice.)
- ``hub``: ``truthfulqa/truthful_qa`` (multiple_choice, 817 questions, lm-eval's data), or
  ``path = FILE`` in its schema.
- ``bigbench``: the 299 questions of BIG-bench's ``truthful_qa`` (task_mc.json, one true answer
  each), which install only from a local copy of the BIG-bench sdist now that PyPI no longer has
  its files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from editguard.backends.base import Backend
from editguard.benchmarks.base import (BenchmarkResult, Choice, Metric, MultipleChoice,
                                       multiple_choice, restrict)
from editguard.benchmarks.records import (DataUnavailable, HubData, HubRecords, SchemaError,
                                          check_source, file_provenance, load_records,
                                          provenance)
from editguard.data.archives import TRUTHFULQA_YAML
from editguard.data.paths import bigbench_task_path, lmeval_task_path, truthfulqa_csv_path
from editguard.kinds import Kind


@dataclasses.dataclass(frozen=True)
class TruthfulQASettings:
    limit: int = 100  # questions scored (0 = all); a seeded, fixed subset
    primer: bool = False
    # TruthfulQA's CSV, the hub, BIG-bench ("offline": BIG-bench's old name, refused with the new)
    source: Literal["csv", "hub", "bigbench", "offline"] = "csv"
    # csv: a copy of TruthfulQA.csv; hub: a JSON Lines file with question, mc1_targets
    path: str = ""
    items: str = ""  # a file of item ids ("csv/12", "hub/3", "bb/7") to score instead of the sample


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    question: str
    choices: tuple[str, ...]
    answer: int


CSV_COLUMNS = ("Question", "Best Answer", "Incorrect Answers")


def closed(answer: str) -> str:
    """An answer ending in a period, as the TruthfulQA authors score them."""
    answer = answer.strip()
    return answer if answer.endswith(".") else answer + "."


HINT = ("pass a copy of the TruthfulQA repository's TruthfulQA.csv, or, for a JSON Lines file "
        "in the hub's schema (question, mc1_targets), add --bench-opt truthfulqa.source=hub")


def read_csv(path: str = "") -> list[Question]:
    """MC1 questions from TruthfulQA's CSV: the best answer (choice 0) against every incorrect
    answer (``;``-separated in the file), each closed with a period: the choice lists of the
    authors' MC1 ("best correct answer vs all false answers")."""
    source = Path(path).expanduser() if path else truthfulqa_csv_path()
    try:
        with source.open(encoding="utf-8-sig", newline="") as handle:  # a BOM is not a column
            reader = csv.DictReader(handle)
            columns = [c for c in reader.fieldnames or [] if c]
            missing = [c for c in CSV_COLUMNS if c not in columns]
            if missing:
                raise SchemaError(f"{source}: TruthfulQA's CSV needs the columns "
                                  f"{list(CSV_COLUMNS)}; its header has {columns}; {HINT}")
            out: list[Question] = []
            for row in reader:
                at = f"{source}:{reader.line_num}"
                fields = {c: (row.get(c) or "").strip() for c in CSV_COLUMNS}
                wrong = [closed(a) for a in fields["Incorrect Answers"].split(";") if a.strip()]
                if not fields["Question"] or not fields["Best Answer"] or not wrong:
                    empty = [c for c in CSV_COLUMNS if not fields[c]]
                    raise SchemaError(f"{at}: {fields['Question'][:60]!r} has an empty {empty}; "
                                      "MC1 needs a question, a best answer and an incorrect one")
                out.append(Question(f"csv/{len(out)}", fields["Question"],
                                    (closed(fields["Best Answer"]), *wrong), 0))
    except UnicodeDecodeError as err:
        raise SchemaError(f"{source}: not UTF-8 text ({err.reason} at byte {err.start}); "
                          f"{HINT}") from None
    if not out:
        raise SchemaError(f"{source}: TruthfulQA's CSV has a header and no questions; {HINT}")
    return out


def read_bigbench() -> list[Question]:
    task = json.loads(bigbench_task_path("truthful_qa", "task_mc.json").read_text())
    out = []
    for i, ex in enumerate(task["examples"]):
        choices = tuple(ex["target_scores"])
        answer = [v for v in ex["target_scores"].values()].index(1)
        out.append(Question(f"bb/{i}", ex["input"], choices, answer))
    return out


_PRIMER = re.compile(r"\{%\s*set prompt_qa\s*=\s*'(.*?)'\s*%\}", re.S)


def read_primer() -> str:
    """The six-question QA primer, as lm-eval's ``truthfulqa_mc1.yaml`` sets ``prompt_qa``."""
    path = lmeval_task_path(TRUTHFULQA_YAML)
    template = yaml.safe_load(path.read_text(encoding="utf-8"))["doc_to_text"]
    found = _PRIMER.search(template)
    if found is None:
        raise ValueError(f"{path}: doc_to_text sets no prompt_qa; is it lm-eval 0.4.13's file?")
    return found.group(1).strip()


HUB = HubData("truthfulqa/truthful_qa", "multiple_choice", "validation", ("question", "mc1_targets"))


def read_hub(path: str = "") -> list[Question]:
    """The hub's 817 questions (mc1_targets), or a local file of records in its schema."""
    out = []
    for i, row in enumerate(load_records("truthfulqa", HUB, path)):
        labels = list(row["mc1_targets"]["labels"])
        out.append(Question(f"hub/{i}", row["question"], tuple(row["mc1_targets"]["choices"]),
                            labels.index(1)))
    return out


class TruthfulQA(MultipleChoice):
    name: ClassVar[str] = "truthfulqa"
    version: ClassVar[str] = "2"  # 2: TruthfulQA's CSV is the default source
    kind: ClassVar[Kind] = "safety"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("mc1", primary=True),)
    settings: ClassVar[type] = TruthfulQASettings

    def check(self) -> None:
        super().check()
        source, path = self.options.source, self.options.path
        if source == "offline":
            raise ValueError("truthfulqa source 'offline' is now called 'bigbench' (BIG-bench's "
                             "299 questions); TruthfulQA's 817 run offline from its CSV with the "
                             "default source 'csv': write --bench-opt truthfulqa.source=bigbench, "
                             "or leave source out")
        if source == "bigbench":
            if path:
                raise ValueError(f"truthfulqa path {path!r} is read by sources 'csv' and 'hub', "
                                 "not 'bigbench'; add --bench-opt truthfulqa.source=csv (a copy "
                                 "of TruthfulQA.csv) or truthfulqa.source=hub (mc1_targets)")
            try:
                bigbench_task_path("truthful_qa", "task_mc.json")
            except FileNotFoundError as err:
                raise DataUnavailable(
                    f"truthfulqa source 'bigbench' reads BIG-bench's truthful_qa: {err}; or "
                    "score TruthfulQA's 817 questions offline with the default source 'csv', or "
                    "lm-eval's data with --bench-opt truthfulqa.source=hub") from None
        elif source == "csv":
            if path and not Path(path).expanduser().is_file():
                raise FileNotFoundError(f"truthfulqa path {path!r}: no such file; {HINT}")
            read_csv(path)
        else:
            check_source(self.name, HUB, path)
        if self.options.primer:
            read_primer()

    def config(self) -> dict[str, Any]:
        if self.options.source == "hub":
            return {**super().config(), **provenance(HUB, self.options.path)}
        if self.options.source == "csv":
            return {**super().config(), **file_provenance(self.options.path)}
        return super().config()

    def items(self) -> list[Choice]:
        opts: TruthfulQASettings = self.options
        if opts.source == "csv":
            questions = read_csv(opts.path)
        elif opts.source == "hub":
            questions = read_hub(opts.path)
        elif opts.source == "bigbench":
            questions = read_bigbench()
        else:
            raise ValueError(f"truthfulqa source {opts.source!r} is not one of 'csv', 'hub', "
                             "'bigbench'")
        head = read_primer() + "\n\n" if opts.primer else ""
        return [Choice(q.id, f"{head}Q: {q.question}\nA:", tuple(" " + c for c in q.choices),
                       q.answer)
                for q in self.select(questions, lambda q: q.id)]


@dataclasses.dataclass(frozen=True)
class TruthfulQAMc2Settings:
    limit: int = 100  # questions scored (0 = all 817); a seeded, fixed subset
    primer: bool = True  # lm-eval always puts the six-question QA primer first
    path: str = ""  # a local JSON Lines file with question, mc2_targets, instead of the hub
    items: str = ""  # a file of item ids ("validation/12") to score instead of the sample


class TruthfulQAMc2(HubRecords):
    """TruthfulQA mc2 as lm-eval's ``truthfulqa_mc2``: the probability mass of the true answers
    among all of a question's answers (several true ones each), from the summed log-likelihood
    of each answer after "Q: <question>\\nA:". Computed as a softmax over the answers'
    log-likelihoods, which is lm-eval's exp / sum without its underflow. Hub data only
    (BIG-bench's copy has one true answer per question)."""

    name: ClassVar[str] = "truthfulqa_mc2"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "safety"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("mc2", primary=True),)
    settings: ClassVar[type] = TruthfulQAMc2Settings
    data: ClassVar[HubData] = HubData("truthfulqa/truthful_qa", "multiple_choice", "validation",
                                      ("question", "mc2_targets"))

    def items(self) -> list[tuple[str, str, tuple[str, ...], tuple[int, ...]]]:
        """(id, context, answers, labels) of the selected questions."""
        opts: TruthfulQAMc2Settings = self.options
        head = read_primer() + "\n\n" if opts.primer else ""
        pool = [(i, f"{head}Q: {r['question']}\nA:", tuple(r["mc2_targets"]["choices"]),
                 tuple(int(x) for x in r["mc2_targets"]["labels"]))
                for i, r in self.records()]
        return self.select(pool, lambda q: q[0])

    def evaluate(self, backend: Backend, item_ids: Sequence[str] | None = None) -> BenchmarkResult:
        chosen = restrict(self.items(), item_ids, lambda q: q[0])
        before = getattr(backend, "truncated", 0)
        scores = multiple_choice(backend, [q[1] for q in chosen],
                                 [tuple(" " + a for a in q[2]) for q in chosen])
        values = []
        for lls, (_, _, _, labels) in zip(scores, chosen):
            if not all(math.isfinite(v) for v in lls):
                values.append(math.nan)
                continue
            top = max(lls)
            weights = [math.exp(v - top) for v in lls]
            values.append(math.fsum(w for w, y in zip(weights, labels) if y == 1) /
                          math.fsum(weights))
        result = self.result([q[0] for q in chosen], {"mc2": values})
        return dataclasses.replace(result, truncated=getattr(backend, "truncated", 0) - before)
