"""The grid's wall time against its distinct work, and against a naive one-case-at-a-time run.

    .venv/bin/python -m perf.grid [pytest options for suites/, e.g. --limit-all 50]

Runs ``pytest suites/`` (the default matrix unless options say otherwise) in a subprocess with a
fresh cache, so that every baseline and statistic is computed, and reads back the time every
(model, method) group spent per phase from results.json. The distinct work is what the matrix
cannot avoid: each model loaded once per group, each baseline (model, benchmark) once, each
method's preparation once and its trajectory of edits walked once, each checkpoint scored once.
Printed: the run's wall time over its distinct work (what the scheduling, caching and pytest cost
on top), and an estimate of a naive harness that, per test case, loads the model, re-applies all
n edits from the unedited weights and recomputes the baseline.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from editguard.reports.timings import PHASES, per_phase
from editguard.verdicts.row import Row
from perf.suite import run_suite


def naive_estimate(rows: list[Row]) -> float:
    """Seconds for one case at a time, from the measured phases: every case pays a model load,
    n edits at its group's seconds per edit, one benchmark's share of the model's baselines and
    of its checkpoint's scoring; each method prepares once (statistics cached on disk, as the
    reference code does)."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row.model, row.method)].append(row)
    benchmarks = {(r.model, r.benchmark) for r in rows}
    baseline_total = per_phase(rows)["baseline_s"]
    per_baseline = baseline_total / max(len(benchmarks), 1)
    total = 0.0
    for group_rows in groups.values():
        last = max(group_rows, key=lambda r: r.n_edits)
        timings = last.provenance["timings"]
        cases = {(r.n_edits, r.benchmark) for r in group_rows}
        per_edit = float(timings.get("edit_s", 0.0)) / last.n_edits
        per_score = float(timings.get("score_s", 0.0)) / max(len(cases), 1)
        total += float(timings.get("prepare_s", 0.0))  # statistics cached on disk, as usual
        for n, _ in cases:
            total += float(timings.get("load_s", 0.0)) + n * per_edit + per_baseline + per_score
    return total


def main() -> None:
    args = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        wall, done = run_suite(args, Path(tmp) / "cache", report)
        document = json.loads((report / "results.json").read_text())
    rows = [Row.from_dict(r) for r in document["results"]]
    spent = per_phase(rows)
    distinct = sum(spent.values())
    phases = ", ".join(f"{label} {spent[name]:.1f} s" for name, label in PHASES)
    naive = naive_estimate(rows)
    lines = {(r.model, r.method, r.n_edits) for r in rows}
    summary = done.stdout.strip().splitlines()[-1:] or ["(no summary)"]
    print(f"{len(rows)} rows, {len(lines)} (model, method, n_edits) lines, exit status "
          f"{done.returncode}: {summary[0].strip('= ')}")
    print(f"phases: {phases}")
    print(f"wall {wall:.1f} s, distinct work {distinct:.1f} s: ratio {wall / distinct:.2f}x "
          "(interpreter start, collection, pytest and reporting on top)")
    print(f"naive estimate (per case: load, re-edit from scratch, re-baseline) "
          f"{naive:.1f} s: {naive / wall:.1f}x the run's wall time")


if __name__ == "__main__":
    main()
