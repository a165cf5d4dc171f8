"""CPU threads per xdist worker: the machine's cores shared out among the busy workers.

torch gives every process as many compute threads as the machine has cores. Under ``-n N`` on
a CPU that puts N times as many busy threads as cores on the machine, and they spend their time
waiting on each other (``-n 2`` on 2 cores edited 3 to 13 times slower per edit than with the
cores shared, ``python -m perf.workers``). So each worker takes its share, ``cores // busy``
(at least 1), where ``busy`` is the number of workers that get a trajectory: at most one per
(model, method), so ``--methods rome -n 2`` leaves its one busy worker every core. A caller who
chose a thread count (``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``, a positive integer) is left to
torch, which reads it itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

CHOSEN = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def chosen(env: Mapping[str, str]) -> str | None:
    """The caller's thread variable (``"OMP_NUM_THREADS=4"``), or None. A value that is not a
    positive integer (empty, ``0``, ``abc``) is no choice: torch ignores it, takes every core."""
    for name in CHOSEN:
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return f"{name}={value}"
    return None


def busy_workers(workers: int, groups: int) -> int:
    """Workers that get cases: one per (model, method) group at most."""
    return max(1, min(workers, groups))


def worker_threads(cores: int, busy: int, env: Mapping[str, str]) -> int | None:
    """Compute threads for one of ``busy`` processes sharing ``cores``; None when the caller
    chose, or one process works alone (torch's default, every core, is right)."""
    if chosen(env) is not None or busy <= 1:
        return None
    return max(1, cores // busy)


def share_cores(busy: int, env: Mapping[str, str] | None = None) -> int:
    """Set this worker's torch thread count to its share of the cores; return the count torch
    uses now (the caller's choice, or the default, where there is nothing to share)."""
    threads = worker_threads(available_cores(), busy, os.environ if env is None else env)
    if threads is not None:
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())
