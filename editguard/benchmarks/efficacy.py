"""Did the edits take? CounterFact's efficacy, generalisation and specificity scores.

Per edit (one item per case id), comparing mean per-token log-probabilities as CounterFact does:
  rewrite       1 if target_new beats target_true after the rewrite prompt
  paraphrase    share of paraphrase prompts where target_new beats target_true
  neighborhood  share of neighbourhood prompts whose own answer still beats target_new
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import ClassVar

from editguard.backends.base import Backend
from editguard.benchmarks.base import Benchmark, BenchmarkResult, Metric
from editguard.kinds import Kind


@dataclasses.dataclass(frozen=True)
class EfficacySettings:
    pass


def _share(wins: list[float]) -> float:
    if not wins:
        return math.nan
    return math.fsum(wins) / len(wins)


class Efficacy(Benchmark):
    name: ClassVar[str] = "efficacy"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "efficacy"
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("rewrite", primary=True), Metric("paraphrase"), Metric("neighborhood"))
    settings: ClassVar[type] = EfficacySettings
    needs_edits: ClassVar[bool] = True

    def evaluate(self, backend: Backend, item_ids: Sequence[str] | None = None) -> BenchmarkResult:
        wanted = set(item_ids) if item_ids is not None else None
        edits = [e for e in self.edits if wanted is None or e.case_id in wanted]
        pairs: list[tuple[str, str]] = []
        for e in edits:
            for prompt in (e.text, *e.paraphrase_prompts):
                pairs += [(prompt, " " + e.target_new), (prompt, " " + e.target_true)]
            for n in e.neighbourhood:
                pairs += [(n.prompt, " " + n.target), (n.prompt, " " + e.target_new)]
        scored = iter(r.mean for r in backend.loglikelihood(pairs))

        def wins(count: int) -> list[float]:
            out = []
            for _ in range(count):
                first, second = next(scored), next(scored)
                ok = math.isfinite(first) and math.isfinite(second)
                out.append(float(first > second) if ok else math.nan)
            return out

        rewrite, paraphrase, neighborhood = [], [], []
        for e in edits:
            rewrite += wins(1)
            paraphrase.append(_share(wins(len(e.paraphrase_prompts))))
            neighborhood.append(_share(wins(len(e.neighbourhood))))
        return self.result([e.case_id for e in edits], {
            "rewrite": rewrite, "paraphrase": paraphrase, "neighborhood": neighborhood})
