"""SAMSum dialogue summarisation, as paper (b) ("Model Editing Can Hurt General Abilities of
LLMs") prompts it: "<dialogue>\\nTL;DR:", greedy, 25 new tokens, no stop string but the end of
sequence. Scored per dialogue with ``rouge-score`` (Google's ROUGE, as Hugging Face ``evaluate``
uses it; no stemming): rouge1, rouge2, rougeL F-measures and ``rouge``, their mean (paper b's
number). Data: ``knkarthick/samsum`` (a parquet copy of Samsung/samsum; test, 819 dialogues) or
a local file with dialogue, summary.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

from editguard.benchmarks.base import Metric
from editguard.benchmarks.generative import Generative, Prompted
from editguard.benchmarks.records import HubData, HubRecords, require
from editguard.kinds import Kind

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@dataclasses.dataclass(frozen=True)
class SamsumSettings:
    limit: int = 100  # dialogues scored (0 = all); a seeded, fixed subset
    path: str = ""  # a local JSON Lines file with dialogue, summary, instead of the hub
    keep_text: bool = False  # keep every summary (baseline and edited) in results.json
    items: str = ""  # a file of item ids ("test/12") to score instead of the sample


class Samsum(HubRecords, Generative):
    name: ClassVar[str] = "samsum"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("rouge", primary=True),
                                             *(Metric(t) for t in ROUGE_TYPES))
    settings: ClassVar[type] = SamsumSettings
    until: ClassVar[tuple[str, ...]] = ()
    max_new_tokens: ClassVar[int] = 25
    data: ClassVar[HubData] = HubData("knkarthick/samsum", None, "test", ("dialogue", "summary"))

    def check(self) -> None:
        require("rouge_score", self.name)
        super().check()

    def items(self) -> list[Prompted]:
        pool = [Prompted(i, f"{r['dialogue']}\nTL;DR:", (r["summary"],)) for i, r in self.records()]
        return self.select(pool, lambda p: p.id)

    def score(self, item: Prompted, response: str) -> dict[str, float]:
        scores = _scorer().score(item.references[0], response.strip())
        out = {t: float(scores[t].fmeasure) for t in ROUGE_TYPES}
        return {"rouge": sum(out.values()) / len(out), **out}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "rouge": "rouge-score, F-measure, no stemmer"}


@functools.cache
def _scorer() -> Any:
    """One scorer for the process (it compiles its tokeniser's patterns)."""
    from rouge_score import rouge_scorer  # the hub extra; named in check() when missing

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
