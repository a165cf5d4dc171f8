"""Chance failures of a run's verdicts and the items a benchmark needs (verdicts.chance/power)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from editguard.verdicts.chance import by_chance, false_fail_probability
from editguard.verdicts.power import advice, items_needed
from editguard.verdicts.row import Row


def row(mode: str = "point", se: float | None = 0.025, limit: float = 5.0, **kw: object) -> Row:
    fields: dict = dict(baseline=0.5, edited=0.48, threshold="drop <= 5.0 pt", passed=True,
                        delta_se=se, confidence=0.95, limits={"max_drop": limit},
                        modes={"max_drop": mode}, mode=mode, n_items=100, baseline_sd=0.5)
    fields.update(kw)
    return Row("m", "rome", 10, "mmlu", "acc", "capability", **fields)


def test_false_fail_probability_in_each_mode():
    # limit 5 pt, se 2.5 pt: the point delta of an unchanged model falls past -5 pt at 2 sd
    assert false_fail_probability(row("point")) == pytest.approx(stats.norm.cdf(-2.0))
    assert false_fail_probability(row("ci")) == pytest.approx(stats.norm.cdf(-2.0 - 1.959964))
    assert false_fail_probability(row("noninferiority")) == pytest.approx(
        stats.norm.cdf(-2.0 + 1.959964))
    assert false_fail_probability(row(se=0.0)) == 0.0
    assert false_fail_probability(row(se=None)) is None
    assert false_fail_probability(row(limits={"min": 0.9}, modes={"min": "point"})) is None
    assert false_fail_probability(row(status="error")) is None


def test_the_expected_count_matches_simulated_point_verdicts():
    # 40 verdicts whose delta is pure noise with sd 2.5 pt: how many drop past 5 pt
    rows = [row("point") for _ in range(40)]
    expected = by_chance(rows)
    assert expected is not None and expected.verdicts == 40
    rng = np.random.default_rng(0)
    simulated = (rng.normal(0.0, 0.025, size=(20000, 40)) < -0.05).sum(axis=1).mean()
    assert expected.expected == pytest.approx(simulated, rel=0.05)
    assert "of 40 drop verdicts, about 0.9 would fail" in expected.describe()
    assert by_chance([row(se=None)]) is None


def test_items_needed_is_the_normal_approximation():
    # sd 0.5 (accuracy near 0.5), a 5 pt drop, 95% and power 80%: 2 * 0.25 * 2.8016^2 / 0.0025
    assert items_needed(0.5, 5.0) == 1570
    assert items_needed(0.5, 10.0) == 393  # a drop twice as large needs a quarter of the items
    assert items_needed(0.0, 5.0) == 1
    with pytest.raises(ValueError, match="drop_pt must be positive"):
        items_needed(0.5, 0.0)


def test_advice_takes_the_largest_need_per_column():
    found = advice([row(baseline_sd=0.3), row(baseline_sd=0.5), row(limits={"min": 0.9})])
    assert [(a.column, a.needed, a.scored) for a in found] == [("mmlu.acc", 1570, 100)]
