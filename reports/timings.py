"""The run's time per phase, from the timings every row carries in its provenance."""

from __future__ import annotations

import math
from collections.abc import Sequence

from editguard.verdicts.row import Row

PHASES = (("load_s", "load"), ("baseline_s", "baselines"), ("prepare_s", "statistics/training"),
          ("edit_s", "editing"), ("score_s", "scoring"))


def per_phase(rows: Sequence[Row]) -> dict[str, float]:
    """Seconds per phase, summed over (model, method) groups: each group's timings are read from
    its furthest checkpoint (a trajectory's editing and scoring times grow along it)."""
    furthest: dict[tuple[str, str], Row] = {}
    for row in rows:
        timings = row.provenance.get("timings")
        if not isinstance(timings, dict):
            continue
        key = (row.model, row.method)
        if key not in furthest or row.n_edits >= furthest[key].n_edits:
            furthest[key] = row
    out = {name: 0.0 for name, _ in PHASES}
    for row in furthest.values():
        timings = row.provenance["timings"]
        for name, _ in PHASES:
            value = timings.get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[name] += float(value)
    return out if furthest else {}


def describe(rows: Sequence[Row]) -> str | None:
    """``editguard time per phase: load 3.0 s, baselines 164.4 s, ...`` or None without timings."""
    spent = per_phase(rows)
    if not spent:
        return None
    parts = ", ".join(f"{label} {spent[name]:.1f} s" for name, label in PHASES)
    return f"editguard time per phase (summed over workers): {parts}"
