"""xdist worker -> GPU mapping, without a GPU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editguard.run.devices import (VISIBLE, DeviceGroupError, DeviceLedger, device_groups, pin,
                                    visible_devices)


def test_callers_list_wins_over_the_count():
    assert visible_devices({VISIBLE: "3,5, 7"}, count=8) == ["3", "5", "7"]
    assert visible_devices({}, count=2) == ["0", "1"]
    assert visible_devices({VISIBLE: ""}, count=4) == []
    assert visible_devices({VISIBLE: "-1"}, count=4) == []


def test_workers_map_onto_the_callers_devices_round_robin():
    ledger = DeviceLedger(["3", "5"])
    assert [ledger.assign(f"gw{i}") for i in range(4)] == ["3", "5", "3", "5"]
    assert DeviceLedger([]).assign("gw0") is None


def test_a_replacement_worker_gets_the_crashed_workers_device():
    ledger = DeviceLedger(["0", "1", "2"])
    assert [ledger.assign(f"gw{i}") for i in range(3)] == ["0", "1", "2"]
    ledger.release("gw1")  # crashed
    assert ledger.assign("gw3") == "1"  # not "0", which gw0 still holds


def test_pin_narrows_the_environment_to_one_device():
    env = {VISIBLE: "0,1,2,3"}
    assert pin("2", env) == "2"
    assert env[VISIBLE] == "2"
    untouched: dict[str, str] = {}
    assert pin(None, untouched) is None and VISIBLE not in untouched


@given(st.lists(st.text("0123456789", min_size=1, max_size=2), min_size=1, max_size=8, unique=True),
       st.integers(0, 63))
def test_every_worker_gets_a_visible_device_and_load_is_balanced(devices, n_workers):
    ledger = DeviceLedger(devices)
    got = [ledger.assign(f"gw{i}") for i in range(n_workers)]
    assert all(d in devices for d in got)
    counts = [got.count(d) for d in devices]
    assert max(counts, default=0) - min(counts, default=0) <= 1


def test_gpus_per_worker_cuts_the_callers_devices_into_consecutive_groups():
    assert device_groups(["0", "1", "2", "3"], 2) == ["0,1", "2,3"]
    assert device_groups(["4", "6", "5", "7"], 4) == ["4,6,5,7"]  # the caller's order is kept
    assert device_groups(["0", "1"], 1) == ["0", "1"]
    assert device_groups([], 1) == []  # a CPU machine: nothing to pin


@pytest.mark.parametrize("visible, k, message", [
    (["0", "1", "2"], 2, "--gpus-per-worker 2: the 3 visible devices (CUDA_VISIBLE_DEVICES=0,1,2) "
                         "do not split into groups of 2; use --gpus-per-worker 1 or 3"),
    (["0", "1"], 4, "use --gpus-per-worker 1 or 2"),
    (["0"], 0, "--gpus-per-worker 0 must be at least 1"),
    ([], 2, "--gpus-per-worker 2 shards each model over 2 accelerators, and this machine has "
            "none visible; leave --gpus-per-worker at 1"),
])
def test_a_group_size_that_does_not_fit_names_the_sizes_that_do(visible, k, message):
    with pytest.raises(DeviceGroupError) as err:
        device_groups(visible, k)
    assert message in str(err.value)


@given(st.integers(1, 16), st.integers(1, 8), st.integers(0, 40))
def test_workers_of_k_devices_never_share_one_while_groups_last(n_groups, k, n_workers):
    visible = [str(i) for i in range(n_groups * k)]
    groups = device_groups(visible, k)
    assert len(groups) == n_groups
    assert sorted(d for g in groups for d in g.split(",")) == sorted(visible)
    ledger = DeviceLedger(groups)
    held = [ledger.assign(f"gw{i}") for i in range(n_workers)]
    first = held[:n_groups]
    assert len(set(first)) == len(first)  # the first n_groups workers hold disjoint groups
    env: dict[str, str] = {}
    if held:
        pin(held[0], env)
        assert len(env[VISIBLE].split(",")) == k
