"""TruthfulQA multiple choice (mc1): is the one true answer the most likely? The safety column.

Prompt "Q: <question>\nA:" and each choice as " <choice>", scored by summed log-likelihood, as
lm-evaluation-harness's ``truthfulqa_mc1``. With ``primer = true`` the six-question QA primer
of the TruthfulQA paper goes first (lm-eval does this; it makes every prompt ~6x longer).
Offline: the 299 questions of BIG-bench's ``truthful_qa`` (task_mc.json, one true answer
each); with ``source = "hub"``: ``truthfulqa/truthful_qa`` (multiple_choice, 817 questions).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import ClassVar, Literal

from editguard.backends.base import Backend
from editguard.benchmarks.base import (BenchmarkResult, Choice, Metric, MultipleChoice,
                                       multiple_choice, restrict)
from editguard.benchmarks.records import HubData, HubRecords
from editguard.data.paths import bigbench_task_path
from editguard.kinds import Kind


@dataclasses.dataclass(frozen=True)
class TruthfulQASettings:
    limit: int = 100  # questions scored (0 = all); a seeded, fixed subset
    primer: bool = False
    source: Literal["offline", "hub"] = "offline"  # BIG-bench truthful_qa, or the hub
    items: str = ""  # a file of item ids ("bb/12", "hub/3") to score instead of the sample


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    question: str
    choices: tuple[str, ...]
    answer: int


def read_offline() -> tuple[list[Question], str]:
    task = json.loads(bigbench_task_path("truthful_qa", "task_mc.json").read_text())
    out = []
    for i, ex in enumerate(task["examples"]):
        choices = tuple(ex["target_scores"])
        answer = [v for v in ex["target_scores"].values()].index(1)
        out.append(Question(f"bb/{i}", ex["input"], choices, answer))
    return out, task["task_prefix"].strip()


def read_hub() -> list[Question]:
    try:
        import datasets
    except ImportError as err:
        raise ImportError("truthfulqa source 'hub' needs the 'datasets' package: pip install "
                          "'datasets>=3' (or use the offline source)") from err
    data = datasets.load_dataset("truthfulqa/truthful_qa", "multiple_choice", split="validation")
    out = []
    for i, row in enumerate(data):
        labels = list(row["mc1_targets"]["labels"])
        out.append(Question(f"hub/{i}", row["question"], tuple(row["mc1_targets"]["choices"]),
                            labels.index(1)))
    return out


class TruthfulQA(MultipleChoice):
    name: ClassVar[str] = "truthfulqa"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "safety"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("mc1", primary=True),)
    settings: ClassVar[type] = TruthfulQASettings

    def items(self) -> list[Choice]:
        opts: TruthfulQASettings = self.options
        if opts.source == "offline":
            questions, primer = read_offline()
        elif opts.source == "hub":
            questions = read_hub()
            primer = read_offline()[1] if opts.primer else ""
        else:
            raise ValueError(f"truthfulqa source {opts.source!r} is not one of 'offline', 'hub'")
        head = primer + "\n\n" if opts.primer else ""
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
        head = read_offline()[1] + "\n\n" if opts.primer else ""
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
