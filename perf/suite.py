"""The user's suite in a subprocess, for the speed scripts that time whole runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_suite(args: Sequence[str], cache: Path, report: Path,
              env: Mapping[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """``pytest suites/ -q`` with ``args``, its own cache and report folder: (wall seconds, the
    finished process). Stops the script, with the suite's output, if it wrote no results."""
    command = [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p",
               "no:cacheprovider", "--report-dir", str(report), "--editguard-cache", str(cache),
               *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=None if env is None else dict(env),
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if not (report / "results.json").exists():
        sys.exit(f"the suite wrote no results (exit status {done.returncode}):\n"
                 f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return wall, done
