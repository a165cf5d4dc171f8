"""Sequential edits of one (model, method), scored at every requested n on the way.

The n=10 state is on the way to n=30: edits are applied once, in order, in batches of
``batch_size`` (a batch never crosses a checkpoint), and every selected benchmark is scored when
the trajectory reaches a checkpoint. ``close`` restores the original weights by copy and checks
them bit for bit against the digests taken when the model was loaded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from editguard.backends.base import Backend
from editguard.benchmarks.base import Benchmark, BenchmarkResult
from editguard.case import Outcome
from editguard.editors.base import EditHandle, Editor, Progress, silent
from editguard.run.progress import scoring
from editguard.edits.request import EditRequest
from editguard.models.loading import LoadedModel

PROBE = (("The capital of France is", " Paris"), ("Water is made of hydrogen and", " oxygen"))


@dataclasses.dataclass(frozen=True)
class _Live:
    """What a trajectory needs while it can still edit; dropped on close to free the model."""

    loaded: LoadedModel
    editor: Editor
    backend: Backend


class Trajectory:
    def __init__(self, *, loaded: LoadedModel, editor: Editor, edits: Sequence[EditRequest],
                 checkpoints: Sequence[int], batch_size: int, benchmarks: Mapping[str, Benchmark],
                 baselines: Mapping[str, BenchmarkResult], backend: Backend,
                 whole: bool = False, progress: Progress = silent) -> None:
        self._live: _Live | None = _Live(loaded, editor, backend)
        self.whole = whole  # one editor call for all the edits, even none (an edited checkpoint)
        self.method = str(getattr(editor, "name", type(editor).__name__))
        self.progress = progress
        self.label = f"{loaded.label}-{self.method}"
        self.edits = list(edits)
        self.checkpoints = sorted(checkpoints)
        self.batch_size = batch_size
        self.benchmarks = dict(benchmarks)
        self.baselines = dict(baselines)
        self.applied = 0
        self.handle: EditHandle | None = None
        self.outcomes: dict[int, dict[str, Outcome]] = {}
        self.stopped: Outcome | None = None  # set once the model collapsed or an edit failed
        self.timings: dict[str, float] = {"edit_s": 0.0, "score_s": 0.0}
        self.edit_stats: list[dict[str, object]] = []  # one record per editor call, in order
        self.change_norms: dict[int, dict[str, dict[str, float]]] = {}  # checkpoint -> norms

    @property
    def live(self) -> _Live:
        if self._live is None:
            raise RuntimeError("this trajectory was closed: it only answers the checkpoints it "
                               f"already scored ({sorted(self.outcomes)})")
        return self._live

    def outcome(self, n: int, benchmark: str) -> Outcome:
        if n not in self.checkpoints:
            raise KeyError(f"n_edits={n} is not a checkpoint of this trajectory "
                           f"({self.checkpoints})")
        for checkpoint in self.checkpoints:
            if checkpoint > n:
                break
            if checkpoint not in self.outcomes:
                self.outcomes[checkpoint] = self._reach(checkpoint)
        return self.outcomes[n][benchmark]

    def _all(self, outcome: Outcome) -> dict[str, Outcome]:
        return {name: outcome for name in self.benchmarks}

    def _reach(self, n: int) -> dict[str, Outcome]:
        if self.stopped is not None:
            return self._all(self.stopped)
        method, backend = self.method, self.live.backend
        start = time.perf_counter()
        try:
            self._edit_to(n)
        except FloatingPointError as err:
            self.stopped = Outcome("collapsed", message=f"model collapsed while {method} applied "
                                   f"edit {self.applied + 1}: {err}")
            return self._all(self.stopped)
        except Exception as err:  # an editor bug must not stop the other cases
            self.stopped = Outcome("error", message=f"{method} failed while applying edit "
                                   f"{self.applied + 1} of {n}: {type(err).__name__}: {err}")
            return self._all(self.stopped)
        finally:
            self.timings["edit_s"] += time.perf_counter() - start
        undeclared = self._undeclared_changes()
        if undeclared:
            self.stopped = Outcome("error", message=(
                f"{method} changed {len(undeclared)} parameters it does not declare after "
                f"{self.applied} edits: {undeclared[:5]}; the scores would not be the edit's "
                "alone and restoring cannot undo them"))
            return self._all(self.stopped)
        self.change_norms[n] = self.handle.change_norms() if self.handle is not None else {}
        start = time.perf_counter()
        before = backend.nonfinite
        backend.loglikelihood(PROBE)
        results: dict[str, BenchmarkResult] = {}
        ids = [e.case_id for e in self.edits[:n]]
        for name, bench in self.benchmarks.items():
            with scoring(backend, self.progress, f"{self.label} n={n}: scoring {name}"):
                results[name] = bench.evaluate(backend, ids if bench.needs_edits else None)
        self.timings["score_s"] += time.perf_counter() - start
        if backend.nonfinite > before:
            self.stopped = Outcome("collapsed", message=(
                f"model collapsed after {n} {method} edits: {backend.nonfinite - before} "
                "log-likelihoods were NaN or infinite"))
            return self._all(self.stopped)
        out = {}
        for name, result in results.items():
            base = self.baselines[name]
            if self.benchmarks[name].needs_edits:
                base = base.subset(ids)
            if set(result.item_ids) != set(base.item_ids):  # a verdict compares the same items
                out[name] = Outcome("error", message=(
                    f"{name}: the baseline scored {len(base.item_ids)} items and the edited "
                    f"model {len(result.item_ids)}, {len(set(base.item_ids) ^ set(result.item_ids))}"
                    " of them not in both; the baseline does not belong to this benchmark's "
                    "data (delete it from the editguard cache)"))
                continue
            out[name] = Outcome("ok", edited=result, baseline=base)
        return out

    def _undeclared_changes(self) -> list[str]:
        """Parameters that differ from load time although the editor does not declare them
        (bit-exact, by digest), checked before any score of a checkpoint is recorded."""
        live = self.live
        declared = set(live.editor.parameter_names(live.loaded.model))
        return live.loaded.changed_parameters(skip=declared)

    def _edit_to(self, n: int) -> None:
        live = self.live
        if self.whole:
            if self.handle is None:
                self.handle = live.editor.apply(live.loaded.model, live.loaded.tokenizer,
                                                self.edits[:n])
                ids = [e.case_id for e in self.edits[:n]]
                self.edit_stats += [{"case_ids": ids, **stats} for stats in self.handle.batches]
                self.applied = n
            return
        phase = f"{self.label}: edits"
        while self.applied < n:
            self.progress(phase, self.applied, n)
            batch = self.edits[self.applied : min(self.applied + self.batch_size, n)]
            handle = live.editor.apply(live.loaded.model, live.loaded.tokenizer, batch)
            for stats in handle.batches:
                self.edit_stats.append({"case_ids": [e.case_id for e in batch], **stats})
            if self.handle is None:
                self.handle = handle
            else:
                self.handle.merge(handle)
            self.applied += len(batch)
            if self.applied >= n:
                self.progress(phase, self.applied, n)

    def diagnostics(self, n: int) -> dict[str, Any]:
        """What the editor measured up to checkpoint ``n``: every batch's stats, and the
        Frobenius norm of each edited parameter's change (and of the parameter itself)."""
        batches, count = [], 0
        for record in self.edit_stats:
            ids = record.get("case_ids")
            if count >= n:
                break
            batches.append(record)
            count += len(ids) if isinstance(ids, list) else 0
        return {"edit_batches": batches, "weight_change": self.change_norms.get(n, {})}

    def close(self) -> list[str]:
        """Restore the original weights and let go of the model, editor and backend; returns
        every parameter that still differs from load time (none, unless an editor changed a
        parameter it did not declare) and every module or hook an editor left installed.
        Idempotent."""
        if self._live is None:
            return []
        changed: list[str] = []
        if self.handle is not None or self.applied:
            if self.handle is not None:
                self.handle.restore()
            changed = (self._live.loaded.changed_parameters()
                       + self._live.loaded.changed_structure())
        self.handle = None
        self.applied = 0
        self._live = None
        return changed
