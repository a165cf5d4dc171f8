"""xdist workers on a CPU: each worker's share of the cores against torch's default threads.

    .venv/bin/python -m perf.workers [--workers 2] [suite options]

torch gives every process as many compute threads as the machine has cores, so ``-n N`` on a
CPU runs N times as many busy threads as there are cores. editguard's workers each take
``cores // N`` threads instead, N counting the workers that get a (model, method)
(``editguard/run/threads.py``). This script runs the same matrix
both ways in one go:

1. once in one process with a fresh cache, untimed, so that statistics and baselines are on disk;
2. ``-n N`` with ``OMP_NUM_THREADS`` set to the core count: every worker at torch's default;
3. ``-n N`` as editguard runs it: every worker at its share;
4. in one process again, timed, for what the workers buy over no workers at all.

Steps 2 to 4 read the same cache, so they do the same work: the edits and the scoring of every
checkpoint. Printed: each method's seconds per edit, the threads each worker ran, the wall times
and their ratios. The default matrix is ``--methods ft,rome --n-edits 5 --benchmarks efficacy``
(two trajectories, one per worker); suite options after the script's own replace it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from editguard.run.threads import CHOSEN, available_cores
from perf.suite import run_suite
MATRIX = ["--methods", "ft,rome", "--n-edits", "5", "--benchmarks", "efficacy"]


def per_edit(report: Path) -> dict[str, tuple[float, int]]:
    """method -> (seconds per edit along its trajectory, torch threads of its worker)."""
    rows = [r for r in json.loads((report / "results.json").read_text())["results"]
            if r["status"] == "ok" and r["n_edits"] > 0]
    out: dict[str, tuple[float, int]] = {}
    for method in sorted({r["method"] for r in rows}):
        last = max((r for r in rows if r["method"] == method), key=lambda r: r["n_edits"])
        provenance = last["provenance"]
        seconds = float(provenance["timings"].get("edit_s", 0.0)) / last["n_edits"]
        out[method] = (seconds, int(provenance["host"]["torch_threads"]))
    if not out:
        sys.exit(f"{report / 'results.json'} has no edited row that ran; see its errors")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="xdist workers (-n); default 2")
    own, rest = parser.parse_known_args()
    if own.workers < 2:
        parser.error(f"--workers {own.workers}: sharing needs at least 2 workers; pass 2 or more")
    matrix = rest or MATRIX
    cores = available_cores()
    shared_env = {k: v for k, v in os.environ.items() if k not in CHOSEN}
    default_env = {**shared_env, "OMP_NUM_THREADS": str(cores)}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        run_suite([*matrix, "-n", "0"], cache, Path(tmp) / "warm", shared_env)
        walls, edits = {}, {}
        for name, env, workers in (("torch default", default_env, own.workers),
                                   ("shared", shared_env, own.workers),
                                   ("one process", shared_env, 0)):
            report = Path(tmp) / name.replace(" ", "-")
            walls[name], _ = run_suite([*matrix, "-n", str(workers)], cache, report, env)
            edits[name] = per_edit(report)
    print(f"{own.workers} workers on {cores} cores, matrix: {' '.join(matrix)}")
    for method in sorted(edits["shared"].keys() & edits["torch default"].keys()):
        before, threads_before = edits["torch default"][method]
        after, threads_after = edits["shared"][method]
        ratio = f"{before / after:.2f}x" if after > 0 else "n/a (no edit time)"
        print(f"{method}: {before:.2f} s/edit at {threads_before} threads per worker, "
              f"{after:.2f} s/edit at {threads_after}: {ratio}")
    ratio = walls["torch default"] / walls["shared"]
    print(f"wall: {walls['torch default']:.1f} s at torch's default threads, "
          f"{walls['shared']:.1f} s with the cores shared: {ratio:.2f}x")
    alone = walls["one process"]
    print(f"one process (-n 0, {cores} threads): {alone:.1f} s; -n {own.workers} with the cores "
          f"shared is {alone / walls['shared']:.2f}x that")


if __name__ == "__main__":
    main()
