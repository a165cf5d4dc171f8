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
from typing import ClassVar, Literal

from editguard.benchmarks.base import Choice, Metric, MultipleChoice
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
