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

``truthfulqa_mc2`` reads the same CSV by default: every correct answer against every incorrect
one, as the authors' MC2 (``hub``: lm-eval's ``mc2_targets``).
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
from editguard.benchmarks.base import (Benchmark, BenchmarkResult, Choice, Metric,
                                       MultipleChoice, multiple_choice, restrict)
from editguard.benchmarks.records import (DataUnavailable, HubData, SchemaError, check_source,
                                          file_provenance, ids, load_records, provenance)
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


# The hub's copies (lm-eval's data), in the schema a local ``path`` of source ``hub`` must have
HUB = HubData("truthfulqa/truthful_qa", "multiple_choice", "validation",
              ("question", "mc1_targets"))
MC2_HUB = HubData("truthfulqa/truthful_qa", "multiple_choice", "validation",
                  ("question", "mc2_targets"))

# The columns each metric reads from TruthfulQA's CSV (the file has Type, Category and Source too)
MC1_COLUMNS = ("Question", "Best Answer", "Incorrect Answers")
MC2_COLUMNS = ("Question", "Correct Answers", "Incorrect Answers")


@dataclasses.dataclass(frozen=True)
class CsvQuestion:
    """One row of TruthfulQA's CSV, every answer closed with a period (empty where the file has
    no such column)."""

    id: str
    question: str
    best: str
    correct: tuple[str, ...]
    incorrect: tuple[str, ...]


def closed(answer: str) -> str:
    """An answer ending in a period, as the TruthfulQA authors score them."""
    answer = answer.strip()
    return answer if answer.endswith(".") else answer + "."


def split_answers(field: str) -> tuple[str, ...]:
    """The ``;``-separated answers of one cell, each closed, empty entries dropped."""
    return tuple(closed(a) for a in field.split(";") if a.strip())


def hint(name: str, hub: HubData) -> str:
    return ("pass a copy of the TruthfulQA repository's TruthfulQA.csv, or, for a JSON Lines file "
            f"in the hub's schema ({', '.join(hub.fields)}), add --bench-opt {name}.source=hub")


def read_csv(path: str = "", needs: Sequence[str] = MC1_COLUMNS,
             name: str = "truthfulqa", hub: HubData = HUB) -> list[CsvQuestion]:
    """Every question of TruthfulQA's CSV (the installed copy, or ``path``). ``needs``: the
    columns the caller's metric reads, which must be in the header and non-empty in every row
    (MC1: the best answer and the incorrect ones; MC2: the correct and the incorrect ones)."""
    source = Path(path).expanduser() if path else truthfulqa_csv_path()
    fix = hint(name, hub)
    try:
        with source.open(encoding="utf-8-sig", newline="") as handle:  # a BOM is not a column
            reader = csv.DictReader(handle)
            columns = [c for c in reader.fieldnames or [] if c]
            missing = [c for c in needs if c not in columns]
            if missing:
                raise SchemaError(f"{source}: {name} reads TruthfulQA's CSV, which needs the "
                                  f"columns {list(needs)}; its header has {columns}; {fix}")
            out: list[CsvQuestion] = []
            for row in reader:
                cell = {c: (row.get(c) or "").strip() for c in (*MC1_COLUMNS, *MC2_COLUMNS)}
                parsed = CsvQuestion(f"csv/{len(out)}", cell["Question"],
                                     closed(cell["Best Answer"]) if cell["Best Answer"] else "",
                                     split_answers(cell["Correct Answers"]),
                                     split_answers(cell["Incorrect Answers"]))
                empty = [c for c, value in (("Question", parsed.question),
                                            ("Best Answer", parsed.best),
                                            ("Correct Answers", parsed.correct),
                                            ("Incorrect Answers", parsed.incorrect))
                         if c in needs and not value]
                if empty:
                    raise SchemaError(f"{source}:{reader.line_num}: {parsed.question[:60]!r} has "
                                      f"an empty {empty}; {name} needs a value in each of "
                                      f"{list(needs)}")
                out.append(parsed)
    except UnicodeDecodeError as err:
        raise SchemaError(f"{source}: not UTF-8 text ({err.reason} at byte {err.start}); "
                          f"{fix}") from None
    if not out:
        raise SchemaError(f"{source}: TruthfulQA's CSV has a header and no questions; {fix}")
    return out


def check_csv(name: str, path: str, needs: Sequence[str], hub: HubData) -> None:
    """Start-up check of the ``csv`` source: the file exists and every row can be scored."""
    if path and not Path(path).expanduser().is_file():
        raise FileNotFoundError(f"{name} path {path!r}: no such file; {hint(name, hub)}")
    read_csv(path, needs, name, hub)


def mc1_questions(path: str = "") -> list[Question]:
    """MC1 from TruthfulQA's CSV: the best answer (choice 0) against every incorrect answer, each
    closed with a period: the choice lists of the authors' MC1 ("best correct answer vs all false
    answers")."""
    return [Question(q.id, q.question, (q.best, *q.incorrect), 0) for q in read_csv(path)]


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
            check_csv(self.name, path, MC1_COLUMNS, HUB)
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
            questions = mc1_questions(opts.path)
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
    primer: bool = True  # lm-eval, and the TruthfulQA authors, put the QA primer first
    source: Literal["csv", "hub"] = "csv"  # TruthfulQA's CSV, or lm-eval's hub data
    # csv: a copy of TruthfulQA.csv; hub: a JSON Lines file with question, mc2_targets
    path: str = ""
    items: str = ""  # a file of item ids ("csv/12", "validation/12") to score instead of the sample


class TruthfulQAMc2(Benchmark):
    """TruthfulQA mc2: the probability mass of the true answers among all of a question's answers
    (several true ones each), from the summed log-likelihood of each answer after
    "Q: <question>\\nA:". Computed as a softmax over the answers' log-likelihoods, which is the
    authors' and lm-eval's exp / sum without its underflow.

    ``source = csv`` (the default, offline): TruthfulQA's CSV, every correct answer against every
    incorrect one, each closed with a period, as the authors' MC2 builds them. ``hub``: lm-eval's
    ``truthfulqa_mc2`` data (``mc2_targets`` of ``mc_task.json``: mostly the same answers, not the
    same lists). BIG-bench's copy has one true answer per question, so it cannot serve mc2.
    """

    name: ClassVar[str] = "truthfulqa_mc2"
    version: ClassVar[str] = "2"  # 2: TruthfulQA's CSV is the default source
    kind: ClassVar[Kind] = "safety"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("mc2", primary=True),)
    settings: ClassVar[type] = TruthfulQAMc2Settings

    def check(self) -> None:
        super().check()
        if self.options.source == "csv":
            check_csv(self.name, self.options.path, MC2_COLUMNS, MC2_HUB)
        else:
            check_source(self.name, MC2_HUB, self.options.path)
        if self.options.primer:
            read_primer()

    def config(self) -> dict[str, Any]:
        if self.options.source == "hub":
            return {**super().config(), **provenance(MC2_HUB, self.options.path)}
        return {**super().config(), **file_provenance(self.options.path)}

    def items(self) -> list[tuple[str, str, tuple[str, ...], tuple[int, ...]]]:
        """(id, context, answers, labels) of the selected questions; label 1: a true answer."""
        opts: TruthfulQAMc2Settings = self.options
        head = read_primer() + "\n\n" if opts.primer else ""
        if opts.source == "csv":
            questions = read_csv(opts.path, MC2_COLUMNS, self.name, MC2_HUB)
            pool = [(q.id, q.question, q.correct + q.incorrect,
                     (1,) * len(q.correct) + (0,) * len(q.incorrect)) for q in questions]
        else:
            records = load_records(self.name, MC2_HUB, opts.path)
            pool = [(i, r["question"], tuple(r["mc2_targets"]["choices"]),
                     tuple(int(x) for x in r["mc2_targets"]["labels"]))
                    for i, r in zip(ids(records, MC2_HUB.split), records)]
        return [(i, f"{head}Q: {question}\nA:", answers, labels)
                for i, question, answers, labels in self.select(pool, lambda q: q[0])]

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
