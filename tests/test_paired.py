"""Paired statistics of edited vs baseline scores (editguard.verdicts.paired)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.benchmarks.base import BenchmarkResult
from editguard.verdicts.paired import paired_difference


def result(scores: list[float], ids: list[str] | None = None) -> BenchmarkResult:
    ids = ids or [f"q{i}" for i in range(len(scores))]
    return BenchmarkResult("facts", "1", {}, tuple(ids), {"acc": tuple(scores)})


def test_exact_mcnemar_is_the_binomial_test_on_the_discordant_items():
    # 8 items lost, 2 gained, 10 unchanged: p = 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * 56 / 1024
    before = [1.0] * 8 + [0.0] * 2 + [1.0] * 5 + [0.0] * 5
    after = [0.0] * 8 + [1.0] * 2 + [1.0] * 5 + [0.0] * 5
    found = paired_difference(result(before), result(after), "acc")
    assert found.discordant == (8, 2) and found.n == 20
    assert found.p_value == pytest.approx(112 / 1024, abs=1e-12)
    assert found.mean == pytest.approx(-0.3)
    assert found.low < -0.3 < found.high and found.high > -0.05  # p = 0.11: not shown at 95%
    twice = paired_difference(result(before * 2), result(after * 2), "acc")
    # 16 lost, 4 gained: p = 2 * P(X <= 4), X ~ Bin(20, 1/2) = 2 * 6196 / 2**20; shown at 95%
    assert twice.p_value == pytest.approx(2 * 6196 / 2**20, abs=1e-12)
    assert twice.low < -0.3 < twice.high < 0


def test_an_unchanged_model_has_a_zero_interval_and_p_one():
    scores = [1.0, 0.0, 1.0, 1.0]
    found = paired_difference(result(scores), result(scores), "acc")
    assert (found.mean, found.low, found.high, found.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_items_are_paired_by_id_and_undefined_ones_are_left_out():
    base = result([1.0, 0.0, 1.0, math.nan], ["a", "b", "c", "d"])
    edited = result([0.0, 1.0, 0.0, 1.0, 1.0], ["c", "a", "b", "d", "e"])  # another order
    found = paired_difference(base, edited, "acc")
    # pairs: a 1->1, b 0->0, c 1->0; d has no baseline score, e no baseline item
    assert found.n == 3 and found.discordant == (1, 0)
    assert found.mean == pytest.approx(-1 / 3)


def test_graded_scores_get_an_interval_and_no_mcnemar():
    base = result([0.5, 0.25, 0.75, 0.5, 0.1, 0.9])
    edited = result([0.4, 0.3, 0.5, 0.5, 0.0, 0.7])
    found = paired_difference(base, edited, "acc")
    assert found.p_value is None and found.discordant is None
    assert found.low <= found.mean <= found.high


def test_the_interval_is_reproducible_and_narrows_with_more_items():
    before = [1.0, 0.0, 1.0, 1.0, 0.0] * 8
    after = [1.0, 0.0, 0.0, 1.0, 1.0] * 8
    small = paired_difference(result(before), result(after), "acc")
    assert small == paired_difference(result(before), result(after), "acc")  # fixed seed
    large = paired_difference(result(before * 10), result(after * 10), "acc")
    assert large.high - large.low < small.high - small.low


def test_nothing_in_common_is_an_empty_difference_not_an_error():
    found = paired_difference(result([1.0], ["a"]), result([1.0], ["b"]), "acc")
    assert found.n == 0 and math.isnan(found.mean) and found.p_value is None


def test_a_confidence_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="confidence must be between 0 and 1.*got 95"):
        paired_difference(result([1.0]), result([1.0]), "acc", confidence=95)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])),
                min_size=2, max_size=60))
def test_the_interval_brackets_the_mean_and_the_p_value_is_a_probability(pairs):
    before, after = [b for b, _ in pairs], [a for _, a in pairs]
    found = paired_difference(result(before), result(after), "acc", resamples=200)
    assert found.low - 1e-12 <= found.mean <= found.high + 1e-12
    assert -1.0 <= found.low and found.high <= 1.0
    assert found.p_value is not None and 0.0 <= found.p_value <= 1.0


def test_the_interval_covers_a_known_difference_at_its_stated_rate():
    # 300 seeded simulations of 100 paired 0/1 items whose true mean difference is -0.10
    # (15% of items lost, 5% gained): a 90% interval should cover -0.10 about 90% of the time
    rng = np.random.default_rng(1)
    covered = 0
    runs = 300
    for _ in range(runs):
        before = rng.random(100) < 0.6
        change = rng.random(100)
        after = before.copy()
        after[before & (change < 0.25)] = False  # lose 25% of the 60% right: 15 points
        after[~before & (change < 0.125)] = True  # gain 12.5% of the 40% wrong: 5 points
        found = paired_difference(result(before.astype(float).tolist()),
                                  result(after.astype(float).tolist()), "acc",
                                  confidence=0.9, resamples=999, seed=0)
        covered += found.low <= -0.10 <= found.high
    # binomial sd of the rate at 300 runs is 1.7 points: allow about 3 sd either way
    assert 0.85 <= covered / runs <= 0.95


def test_the_standard_error_is_the_bootstrap_spread():
    diff_scores = [1.0] * 30 + [0.0] * 70
    found = paired_difference(result([0.0] * 100), result(diff_scores), "acc")
    # sd of the mean of 100 Bernoulli(0.3) draws: sqrt(0.3 * 0.7 / 100) = 0.0458
    assert found.se == pytest.approx(math.sqrt(0.21 / 100), rel=0.1)
