"""How many of a run's drop verdicts would fail from item sampling alone.

A run takes many (case, metric) verdicts; even when no edit changed what a model knows, some
would fail because a benchmark scores a sample of items. For each ``max_drop`` verdict this
estimates the probability that it fails when the true change is zero, from the standard error
of its paired delta (normal approximation), in the mode that decided it:

- ``point``: the point delta falls below -limit: ``P = Phi(-L / se)``;
- ``ci``: even the interval's top does: ``P = Phi(-L / se - z)``;
- ``noninferiority``: the interval's bottom does: ``P = Phi(-L / se + z)``;

with ``z`` the normal quantile of the interval's confidence. Their sum is the number expected to
fail by chance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy import stats

from editguard.verdicts.row import Row


@dataclasses.dataclass(frozen=True)
class Chance:
    verdicts: int  # max_drop verdicts with a standard error
    expected: float  # of them, how many would fail with no true change
    modes: tuple[str, ...]
    confidence: float | None

    def describe(self) -> str:
        modes = "/".join(self.modes) or "point"
        # Holm's bounds are stricter than plain ci's, which this counts them as
        about = "at most" if "ci-holm" in self.modes else "about"
        return (f"by chance: of {self.verdicts} drop verdicts, {about} {self.expected:.1f} would "
                f"fail from item sampling alone if no edit had changed the model ({modes} "
                "mode, from each delta's standard error)")


def false_fail_probability(row: Row) -> float | None:
    """P(this row's drop verdict fails | true delta 0), or None when it has none."""
    limit = row.limits.get("max_drop")
    if limit is None or row.delta_se is None or row.status != "ok":
        return None
    mode = row.modes.get("max_drop", "point")
    if row.delta_se <= 0:
        return 0.0  # every resample had the same delta: no sampling noise to fail on
    z = float(stats.norm.ppf(0.5 + (row.confidence or 0.95) / 2))
    # ci-holm's bound is stricter than ci's: counting it as ci overstates its chance failures
    shift = {"point": 0.0, "ci": -z, "ci-holm": -z, "noninferiority": z}.get(mode, 0.0)
    return float(stats.norm.cdf(-(limit / 100.0) / row.delta_se + shift))


def by_chance(rows: Sequence[Row]) -> Chance | None:
    """The run's expected chance failures, or None when no drop verdict has a standard error."""
    found = [(row, p) for row in rows if (p := false_fail_probability(row)) is not None]
    if not found:
        return None
    modes = tuple(dict.fromkeys(row.modes.get("max_drop", "point") for row, _ in found))
    confidence = next((row.confidence for row, _ in found if row.confidence), None)
    return Chance(len(found), math.fsum(p for _, p in found), modes, confidence)
