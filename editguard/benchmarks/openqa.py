"""Open-domain question answering on the hub's data (or a local file of the same schema), as
lm-evaluation-harness's tasks of the same name, 0-shot, greedy until a newline, "." or ",":

  triviaqa  mandarjoshi/trivia_qa rc.nocontext, validation   "Question: <q>?\\nAnswer:"
            exact match (case and punctuation ignored) against any of the answer's aliases
  nq_open   google-research-datasets/nq_open, validation      "Answer these questions:\\n\\nQ: <q>?\\nA:"
            exact match (case, punctuation and articles ignored) against any answer
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from editguard.benchmarks.base import Metric
from editguard.benchmarks.exact import ARTICLES, exact_match
from editguard.benchmarks.generative import Generative, Prompted
from editguard.benchmarks.records import HubData, HubRecords
from editguard.kinds import Kind


@dataclasses.dataclass(frozen=True)
class OpenQASettings:
    limit: int = 100  # questions scored (0 = all); a seeded, fixed subset
    path: str = ""  # a local JSON Lines file in the hub dataset's schema, instead of the hub
    keep_text: bool = False  # keep every answer (baseline and edited) in results.json
    items: str = ""  # a file of item ids ("validation/12") to score instead of the sample


class OpenQA(HubRecords, Generative):
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("exact_match", primary=True),)
    settings: ClassVar[type] = OpenQASettings
    until: ClassVar[tuple[str, ...]] = ("\n", ".", ",")
    max_new_tokens: ClassVar[int] = 32
    ignore: ClassVar[tuple[str, ...]] = ()

    def context(self, record: dict[str, Any]) -> str:
        raise NotImplementedError

    def references(self, record: dict[str, Any]) -> tuple[str, ...]:
        raise NotImplementedError

    def items(self) -> list[Prompted]:
        pool = [Prompted(i, self.context(r), self.references(r)) for i, r in self.records()]
        return self.select(pool, lambda p: p.id)

    def score(self, item: Prompted, response: str) -> dict[str, float]:
        return {"exact_match": exact_match(response, item.references, ignore=self.ignore)}


class TriviaQA(OpenQA):
    name: ClassVar[str] = "triviaqa"
    version: ClassVar[str] = "1"
    data: ClassVar[HubData] = HubData("mandarjoshi/trivia_qa", "rc.nocontext", "validation",
                                      ("question", "answer"))

    def context(self, record: dict[str, Any]) -> str:
        return f"Question: {record['question']}?\nAnswer:"

    def references(self, record: dict[str, Any]) -> tuple[str, ...]:
        return tuple(record["answer"]["aliases"])


class NaturalQuestions(OpenQA):
    name: ClassVar[str] = "nq_open"
    version: ClassVar[str] = "1"
    data: ClassVar[HubData] = HubData("google-research-datasets/nq_open", None, "validation",
                                      ("question", "answer"))
    ignore: ClassVar[tuple[str, ...]] = (ARTICLES,)

    def context(self, record: dict[str, Any]) -> str:
        return f"Answer these questions:\n\nQ: {record['question']}?\nA:"

    def references(self, record: dict[str, Any]) -> tuple[str, ...]:
        answer = record["answer"]
        return tuple(answer) if isinstance(answer, list) else (str(answer),)
