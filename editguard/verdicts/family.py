"""Holm's step-down correction over a run's ci-mode drop verdicts (``--holm``).

Each ci-mode drop verdict tests "the drop is within the limit" and fails when that is rejected.
Taken alone at one-sided level ``alpha``, about ``alpha`` of the verdicts on undamaged models
would fail; over a run's dozens of verdicts that adds up. Holm keeps the chance of *any* false
failure in the run below ``alpha``: sort the p-values, and fail the i-th smallest (from 0) while
it is below ``alpha / (m - i)``, ``m`` being the number of verdicts the run planned.

Tests run on xdist workers one at a time, before the whole family is known, so each test fails
at the first step's bound, ``alpha / m`` (Bonferroni); every such failure is also a Holm one.
At the end of the run the controller takes the full step-down here, which can only fail more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from editguard.verdicts.row import Row

MODE = "ci-holm"


def in_family(row: Row) -> bool:
    return (row.modes.get("max_drop") == "ci" and row.p_damage is not None
            and row.status == "ok")


def holm(rows: Sequence[Row], alpha: float, planned: int) -> tuple[list[Row], list[Row]]:
    """(every row, the family's with their Holm verdict and mode ``ci-holm``; the family rows
    that Holm fails although their test passed)."""
    family = sorted((row for row in rows if in_family(row)),
                    key=lambda row: row.p_damage or 0.0)
    m = max(planned, len(family))
    rejected: set[int] = set()
    for i, row in enumerate(family):
        assert row.p_damage is not None
        if row.p_damage >= alpha / (m - i):
            break
        rejected.add(id(row))
    out, newly = [], []
    for row in rows:
        if not in_family(row):
            out.append(row)
            continue
        drop_failed = id(row) in rejected
        # a test that failed without a Holm rejection failed on another limit (a minimum)
        passed = not drop_failed and row.passed is not False
        message = row.message
        if drop_failed and "Holm" not in message and "Bonferroni" not in message:
            message = "; ".join(filter(None, [message, (
                f"{row.benchmark} {row.metric} dropped {-100.0 * (row.delta or 0.0):.1f} pt "
                f"({row.baseline:.3f} -> {row.edited:.3f}), limit {row.limits['max_drop']:g} pt,"
                f" failed: Holm's step-down over {m} ci verdicts shows damage past the limit "
                f"(p = {row.p_damage:.2g}), {MODE} mode "
                f"[{row.model} | {row.method} | n={row.n_edits}]")]))
        adjusted = dataclasses.replace(row, passed=passed, message=message,
                                       modes={**row.modes, "max_drop": MODE})
        if drop_failed and row.passed is not False:
            newly.append(adjusted)
        out.append(adjusted)
    return out, newly
