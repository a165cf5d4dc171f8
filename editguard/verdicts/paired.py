"""Paired statistics of edited vs baseline scores on the same items.

The baseline and the edited model answer the same items, so the question "did the edit move the
score?" is about the per-item differences, which vary far less than two independent means. For
every (case, metric): the mean paired difference, a percentile bootstrap interval of it (fixed
seed, so a run is reproducible), and for 0/1 metrics the exact McNemar test, which is the
two-sided binomial test on the discordant items (scipy's ``binomtest``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from editguard.benchmarks.base import BenchmarkResult

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    n: int  # items scored (finite) for both models
    mean: float  # mean of edited - baseline over those items, in score units
    low: float  # the bootstrap interval of ``mean`` at ``confidence``
    high: float
    confidence: float
    se: float  # the bootstrap standard error of ``mean``
    p_value: float | None  # exact McNemar for 0/1 scores; None for graded ones
    discordant: tuple[int, int] | None  # (right before and wrong after, wrong before and right after)

    @property
    def interval(self) -> tuple[float, float] | None:
        """(low, high), or None when no item was scored by both."""
        return None if self.n == 0 else (self.low, self.high)


def paired_difference(baseline: BenchmarkResult, edited: BenchmarkResult, metric: str,
                      confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                      seed: int = SEED) -> PairedDifference:
    """The paired difference of ``metric`` over the items both results scored."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    scored = set(baseline.item_ids)
    common = [item for item in edited.item_ids if item in scored]
    pairs = [(b, a) for b, a in zip(baseline.subset(common).scores[metric],
                                    edited.subset(common).scores[metric])
             if math.isfinite(b) and math.isfinite(a)]
    before = [b for b, _ in pairs]
    after = [a for _, a in pairs]
    n = len(before)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.nan, confidence, math.nan, None,
                                None)
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)  # (n,)
    mean = float(diff.mean())
    low, high, se = _bootstrap(diff, confidence, resamples, seed)
    p_value, discordant = None, None
    if set(before) <= {0.0, 1.0} and set(after) <= {0.0, 1.0}:
        lost = sum(1 for b, a in zip(before, after) if b == 1.0 and a == 0.0)
        gained = sum(1 for b, a in zip(before, after) if b == 0.0 and a == 1.0)
        discordant = (lost, gained)
        p_value = 1.0 if lost + gained == 0 else float(
            stats.binomtest(lost, lost + gained, 0.5).pvalue)
    return PairedDifference(n, mean, low, high, confidence, se, p_value, discordant)


@dataclasses.dataclass(frozen=True)
class MeanInterval:
    n: int
    mean: float
    low: float
    high: float
    se: float

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.n == 0 else (self.low, self.high)


def mean_interval(result: BenchmarkResult, metric: str, confidence: float = CONFIDENCE,
                  resamples: int = RESAMPLES, seed: int = SEED) -> MeanInterval:
    """The bootstrap interval of one model's mean ``metric`` (for limits on the score itself)."""
    values = np.asarray(result.defined(metric), dtype=np.float64)  # (n,)
    if values.size == 0:
        return MeanInterval(0, math.nan, math.nan, math.nan, math.nan)
    low, high, se = _bootstrap(values, confidence, resamples, seed)
    return MeanInterval(int(values.size), float(values.mean()), low, high, se)


def _bootstrap(values: np.ndarray, confidence: float, resamples: int,
               seed: int) -> tuple[float, float, float]:
    """(low, high, standard error) of the mean of ``values`` (n,), percentile bootstrap."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    mean = float(values.mean())
    if values.size == 1 or np.all(values == values[0]):
        return mean, mean, 0.0  # every resample has the same mean
    found = stats.bootstrap((values,), np.mean, confidence_level=confidence,
                            n_resamples=resamples, method="percentile", vectorized=True,
                            rng=np.random.default_rng(seed))
    return (float(found.confidence_interval.low), float(found.confidence_interval.high),
            float(found.standard_error))
