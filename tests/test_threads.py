"""CPU threads per xdist worker: each busy worker takes its share of the cores."""

from __future__ import annotations

import os

import pytest

from editguard.run.threads import available_cores, busy_workers, chosen, worker_threads


@pytest.mark.parametrize("cores, busy, expected", [
    (2, 2, 1),    # this project's CI machine under -n 2
    (16, 8, 2),   # eight GPU workers on a 16-core host
    (16, 3, 5),   # a remainder is left idle rather than oversubscribed
    (2, 4, 1),    # more workers than cores: one thread each, never zero
])
def test_each_busy_worker_takes_its_share_of_the_cores(cores, busy, expected):
    assert worker_threads(cores, busy, {}) == expected


def test_only_workers_with_a_trajectory_share():
    assert busy_workers(workers=8, groups=3) == 3  # five workers idle: they take no share
    assert busy_workers(workers=2, groups=12) == 2
    assert busy_workers(workers=2, groups=1) == 1 and worker_threads(8, 1, {}) is None
    assert busy_workers(workers=2, groups=0) == 1


@pytest.mark.parametrize("env", [{"OMP_NUM_THREADS": "4"}, {"MKL_NUM_THREADS": "1"},
                                 {"OMP_NUM_THREADS": " 3 "}])
def test_a_callers_thread_count_is_left_to_torch(env):
    assert chosen(env) is not None
    assert worker_threads(8, 2, env) is None


@pytest.mark.parametrize("value", ["", " ", "0", "abc", "-2", "2.5"])
def test_a_thread_variable_torch_would_ignore_is_no_choice(value):
    assert chosen({"OMP_NUM_THREADS": value}) is None
    assert worker_threads(8, 2, {"OMP_NUM_THREADS": value}) == 4


def test_cores_are_the_ones_this_process_may_run_on():
    if hasattr(os, "sched_getaffinity"):
        assert available_cores() == len(os.sched_getaffinity(0))
    else:
        assert available_cores() == (os.cpu_count() or 1)
