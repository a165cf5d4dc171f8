"""xdist scheduling by trajectory: every case of one (model, method) runs on one worker.

xdist's own ``loadgroup`` learns a test's group from an ``@group`` suffix it writes into the
node id on the worker; since pytest 9.2 that write no longer takes effect
(pytest-dev/pytest-xdist#1386), and groups are silently spread over the workers, each of which
then redoes the trajectory. This scheduler takes the group from the matrix instead (the
controller knows every case id), so grouping holds on any pytest.

Two crash rules differ from xdist's: the case a worker crashed in is reported once and not run
again (xdist re-queues it with the rest of its group, so a case that kills its worker, e.g. by
running out of memory, is run and listed again), and a replacement worker that has not
finished collecting is not handed work (xdist would fail with an internal KeyError when a
second worker crashes meanwhile).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadGroupScheduling
from xdist.workermanage import WorkerController

_PARAM_ID = re.compile(r"\[([^\[\]]+)\](?:@[^\]]*)?$")


def param_id(nodeid: str) -> str | None:
    """The parameter id of a test node id (``...::test_x[ID]``, with or without xdist's
    ``@group`` suffix), e.g. a case id; None for an unparametrized test."""
    match = _PARAM_ID.search(nodeid)
    return match.group(1) if match is not None else None


class TrajectoryScheduling(LoadGroupScheduling):
    """``groups`` maps each case id (the test's parameter id) to its trajectory's group."""

    def __init__(self, config: pytest.Config, log: Producer | None,
                 groups: Mapping[str, str]) -> None:
        super().__init__(config, log)
        self._groups = dict(groups)

    def _split_scope(self, nodeid: str) -> str:
        group = self._groups.get(param_id(nodeid) or "")
        if group is not None:
            return f"editguard::{group}"
        return super()._split_scope(nodeid)

    def remove_node(self, node: WorkerController) -> str | None:
        workload = self.assigned_work.pop(node)
        crashitem = next((nodeid for unit in workload.values()
                          for nodeid, done in unit.items() if not done), None)
        if crashitem is None:
            return None
        workload[self._split_scope(crashitem)][crashitem] = True  # reported once, not re-run
        self.workqueue.update((scope, unit) for scope, unit in workload.items()
                              if not all(unit.values()))
        for other in self.assigned_work:
            self._reschedule(other)
        return crashitem

    def _reschedule(self, node: WorkerController) -> None:
        if node not in self.registered_collections:
            return  # still collecting: it gets work when its collection arrives
        super()._reschedule(node)
