"""xdist worker -> GPU mapping, without a GPU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editguard.run.devices import VISIBLE, DeviceLedger, pin, visible_devices


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
