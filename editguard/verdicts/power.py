"""How many items a benchmark needs to detect a given drop (the advice under the table).

From the baseline's per-item standard deviation ``s``: if the edited model's answers were as
independent of the baseline's as two fresh samples, the per-item difference would have variance
``2 s^2``; pairing (the same items for both) only lowers it. Detecting a true drop of ``D``
(score units) at confidence ``c`` with power ``p`` then needs about

    n = 2 s^2 (z_{(1+c)/2} + z_p)^2 / D^2

items: an upper bound for the paired statistics editguard uses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy import stats

from editguard.verdicts.row import Row

POWER = 0.8


def items_needed(baseline_sd: float, drop_pt: float, confidence: float = 0.95,
                 power: float = POWER) -> int:
    """Items to detect a ``drop_pt`` point drop of a metric whose baseline per-item standard
    deviation is ``baseline_sd`` (see the module docstring)."""
    if drop_pt <= 0:
        raise ValueError(f"drop_pt must be positive, got {drop_pt}")
    z = float(stats.norm.ppf((1 + confidence) / 2)) + float(stats.norm.ppf(power))
    return max(1, math.ceil(2 * baseline_sd**2 * z**2 / (drop_pt / 100.0) ** 2))


@dataclasses.dataclass(frozen=True)
class Advice:
    column: str  # benchmark.metric
    drop_pt: float
    needed: int
    scored: int

    def describe(self) -> str:
        return f"{self.column} {self.needed} for {self.drop_pt:g} pt (scored {self.scored})"


def advice(rows: Sequence[Row], confidence: float = 0.95) -> list[Advice]:
    """Per benchmark.metric with a max_drop limit: items needed to detect a drop of that limit."""
    seen: dict[str, Advice] = {}
    for row in rows:
        limit = row.limits.get("max_drop")
        if not limit or row.baseline_sd is None or not math.isfinite(row.baseline_sd):
            continue
        column = f"{row.benchmark}.{row.metric}"
        needed = items_needed(row.baseline_sd, limit, row.confidence or confidence)
        before = seen.get(column)
        scored = max(row.n_items, before.scored if before else 0)  # the most any case scored
        if before is None or needed > before.needed:
            seen[column] = Advice(column, limit, needed, scored)
        else:
            seen[column] = dataclasses.replace(before, scored=scored)
    return list(seen.values())


def describe(found: Sequence[Advice], confidence: float = 0.95, power: float = POWER) -> str:
    """One line: ``items to detect a drop at the limit (95%, power 80%, ...): mmlu.acc 1317 ...``"""
    parts = ", ".join(a.describe() for a in found)
    return (f"items to detect a drop at its limit ({100 * confidence:g}% confidence, power "
            f"{100 * power:g}%, from the baseline's variance; pairing needs fewer): {parts}; "
            "raise a benchmark's limit option (--bench-opt NAME.limit=N) to reach it")
