"""Progress of the long phases (loading, statistics, edits, scoring), for a person watching.

On a terminal one line per phase is rewritten in place; elsewhere (a CI log, an xdist worker,
whose lines would interleave with other workers' in place) a phase prints a line when it starts,
at each quarter and when it ends, so logs stay readable without carriage returns. ``-q`` turns it
off. The writer is given by the caller (the pytest plugin writes around output capture).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from editguard.editors.base import Progress

QUARTERS = 4
REDRAW_S = 0.2


class TerminalProgress:
    def __init__(self, write: Callable[[str], None], *, in_place: bool, prefix: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._in_place = in_place
        self._prefix = prefix
        self._clock = clock
        self._phase: str | None = None
        self._started = 0.0
        self._drawn = 0.0
        self._step = -1
        self._first = 0  # ``done`` when the phase started: rates count from there
        self._fresh = True  # in place: the phase has not drawn yet (it starts on a line of its own)

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self._clock()
        if phase != self._phase or done == 0:
            self._phase, self._started, self._drawn, self._step = phase, now, 0.0, -1
            self._first = done
            self._fresh = True
        elapsed = now - self._started
        finished = done >= total
        line = f"{self._prefix}{phase}: {done}/{total}"
        moved = done - self._first
        if finished:
            rate = f", {_rate(moved, elapsed)}" if elapsed > 0 and moved > 1 else ""
            line += f" in {elapsed:.1f} s{rate}"
        elif elapsed > 0 and moved:
            line += f" ({_rate(moved, elapsed)})"
        if self._in_place:
            if finished or self._fresh or now - self._drawn >= REDRAW_S:
                # off pytest's half-written line of dots first, then redrawn over itself
                start = "\n" if self._fresh else "\r"
                self._drawn, self._fresh = now, False
                self._write(f"{start}{line}\x1b[K" + ("\n" if finished else ""))
                if finished:
                    self._phase = None
            return
        step = QUARTERS if finished else done * QUARTERS // max(total, 1)
        if step > self._step:  # start, each quarter, end
            self._step = step
            self._write(line + "\n")
        if finished:
            self._phase = None


def _rate(count: int, seconds: float) -> str:
    """``12.5/s``, or ``4.2 s each`` for slow steps (a MEMIT edit on a CPU)."""
    per_second = count / seconds
    return f"{per_second:.1f}/s" if per_second >= 1 else f"{seconds / count:.1f} s each"


@contextmanager
def scoring(backend: object, progress: Progress, phase: str) -> Iterator[None]:
    """Tell ``progress`` how a backend's scoring calls advance, while the block runs (backends
    without a ``progress`` attribute report nothing)."""
    if not hasattr(backend, "progress"):
        yield
        return
    setattr(backend, "progress", lambda done, total: progress(phase, done, total))
    try:
        yield
    finally:
        setattr(backend, "progress", None)
