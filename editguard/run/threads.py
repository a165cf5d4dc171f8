"""CPU threads per xdist worker: the machine's cores shared out among the workers.

torch gives every process as many compute threads as the machine has cores. Under ``-n N`` on
a CPU that puts N times as many busy threads as cores on the machine, and they spend their time
waiting on each other (``-n 2`` on 2 cores edited 3 to 13 times slower per edit than with the
cores shared, ``python -m perf.workers``). So each worker takes its share, ``cores // workers`` (at least 1), unless the caller
chose a thread count: ``OMP_NUM_THREADS`` set in the environment is left to torch, which reads it
itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

CHOSEN = "OMP_NUM_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_threads(cores: int, workers: int, env: Mapping[str, str]) -> int | None:
    """Compute threads for one of ``workers`` processes sharing ``cores``; None when the caller
    chose (``OMP_NUM_THREADS``) or there is one process only (torch's default is right)."""
    if env.get(CHOSEN, "").strip() or workers <= 1:
        return None
    return max(1, cores // workers)


def share_cores(workers: int, env: Mapping[str, str] | None = None) -> int:
    """Set this worker's torch thread count to its share of the cores; return the count torch
    uses now (the caller's choice, or the default, where there is nothing to share)."""
    threads = worker_threads(available_cores(), workers, os.environ if env is None else env)
    if threads is not None:
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())
