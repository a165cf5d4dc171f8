"""CPU threads per xdist worker: each worker takes its share of the cores."""

from __future__ import annotations

import pytest

from editguard.run.threads import CHOSEN, available_cores, worker_threads


@pytest.mark.parametrize("cores, workers, expected", [
    (2, 2, 1),    # this project's CI machine under -n 2
    (16, 8, 2),   # eight GPU workers on a 16-core host
    (16, 3, 5),   # a remainder is left idle rather than oversubscribed
    (2, 4, 1),    # more workers than cores: one thread each, never zero
])
def test_each_worker_takes_its_share_of_the_cores(cores, workers, expected):
    assert worker_threads(cores, workers, {}) == expected


@pytest.mark.parametrize("workers, env", [
    (2, {CHOSEN: "4"}),  # the caller chose: torch reads OMP_NUM_THREADS itself
    (1, {}),             # one process: torch's default (every core) is right
    (0, {}),
])
def test_a_callers_choice_or_a_single_process_is_left_alone(workers, env):
    assert worker_threads(8, workers, env) is None


def test_an_empty_thread_variable_is_not_a_choice():
    assert worker_threads(8, 2, {CHOSEN: " "}) == 4


def test_cores_are_the_ones_this_process_may_run_on():
    assert 1 <= available_cores()
