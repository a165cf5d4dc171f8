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
                        modes={"max_drop": mode}, n_items=100, baseline_sd=0.5)
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
    found = advice([row(baseline_sd=0.3, n_items=300), row(baseline_sd=0.5),
                    row(limits={"min": 0.9})])
    # the largest need, and the most items any case scored (efficacy's grow with n_edits)
    assert [(a.column, a.needed, a.scored) for a in found] == [("mmlu.acc", 1570, 300)]


def holm_row(n: int, p: float, passed: bool = True) -> Row:
    return Row(
        "m", "rome", n, "mmlu", "acc", "capability", 0.5, 0.4, "drop <= 5.0 pt", passed,
        limits={"max_drop": 5.0}, modes={"max_drop": "ci"}, p_damage=p)


def test_holm_steps_down_and_fails_only_what_it_rejects():
    from editguard.verdicts.family import holm

    # alpha 0.025 over 4 planned verdicts: bounds 0.00625, 0.00833, 0.0125, 0.025
    rows = [holm_row(1, 0.004, passed=False), holm_row(2, 0.008), holm_row(3, 0.02),
            holm_row(4, 0.5)]
    adjusted, newly = holm(rows, 0.025, planned=4)
    assert [r.passed for r in adjusted] == [False, False, True, True]
    assert [r.n_edits for r in newly] == [2]  # its test passed (0.008 >= 0.025 / 4)
    assert all(r.mode == "ci-holm" for r in adjusted)
    assert "Holm's step-down over 4 ci verdicts shows damage past the limit (p = 0.008)" in \
        adjusted[1].message
    # Holm stops at the first p above its bound: 0.02 >= 0.0125 keeps n=3 from failing,
    # although 0.02 < 0.025 would fail it uncorrected
    strict, _ = holm(rows, 0.025, planned=40)  # 0.004 >= 0.025 / 40: Holm rejects nothing
    assert [r.passed for r in strict] == [False, True, True, True]  # the test's own failure stays
    other = Row("m", "rome", 1, "efficacy", "rewrite", "efficacy", 0.0, 0.9, ">= 0.90", True,
                limits={"min": 0.9}, modes={"min": "ci"})
    assert holm([other], 0.025, 1)[0] == [other]  # not a drop verdict: untouched


def test_a_ci_drop_verdict_under_holm_fails_at_the_bonferroni_bound():
    from editguard.verdicts.thresholds import Evidence, Threshold, p_damage

    limit = Threshold("mmlu", "acc", "max_drop", 5.0, "ci")
    # a drop of 9 pt with se 1.5 pt: p that the drop is within 5 pt = Phi(-4/1.5) = 0.0038
    p = p_damage(-0.09, 0.015, 5.0)
    assert p == pytest.approx(stats.norm.cdf(-4.0 / 1.5))
    shown = limit.check(0.5, 0.41, "c", evidence=Evidence(100, 0.95, (-0.12, -0.06), None, p, 4))
    assert not shown.passed and "< 0.0063 (Bonferroni over 4 ci verdicts)" in shown.reason
    many = limit.check(0.5, 0.41, "c", evidence=Evidence(100, 0.95, (-0.12, -0.06), None, p, 40))
    assert many.passed  # 0.0038 >= 0.025 / 40: not shown once 40 verdicts share the error rate
