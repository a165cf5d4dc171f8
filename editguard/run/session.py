"""Per-worker state: the loaded model, the baselines, and the trajectory being walked.

Every xdist worker is its own pytest session and holds one of these. Only one trajectory is
live at a time; switching to another (model, method) first restores and verifies the weights.
"""

from __future__ import annotations

import os
import platform
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
import transformers

from editguard.backends import registry as backend_registry
from editguard.backends.base import Backend
from editguard.benchmarks import registry as benchmark_registry
from editguard.benchmarks.base import Benchmark, BenchmarkResult
from editguard.case import Case, Outcome
from editguard.data.corpora import load_corpus
from editguard.data.paths import editguard_home
from editguard.editors import registry as editor_registry
from editguard.editors import checkpoint
from editguard.editors.base import Editor, PrepareContext, Progress, silent
from editguard.edits.request import EditRequest
from editguard.edits.sampling import sample
from editguard.edits.sources import load_edit_source
from editguard.models.loading import LoadedModel, load
from editguard.run import devices, threads
from editguard.run.baselines import BaselineStore
from editguard.run.matrix import Matrix
from editguard.run.progress import scoring
from editguard.run.trajectory import Trajectory



def editguard_version() -> str:
    try:
        return version("editguard")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


def versions() -> dict[str, str]:
    return {"editguard": editguard_version(), "python": platform.python_version(),
            "torch": str(torch.__version__), "transformers": str(transformers.__version__)}


def load_edits(matrix: Matrix) -> list[EditRequest]:
    """The edits every trajectory walks: the first max(n_edits) of the seeded sample; for a
    checkpoint edited elsewhere, every edit of its edit file, in file order (none without)."""
    if matrix.edited is not None:
        return [] if matrix.edits == "embedded" else load_edit_source(matrix.edits, matrix.seed)
    pool = load_edit_source(matrix.edits, matrix.seed)
    return sample(pool, max(matrix.n_edits), matrix.seed)


class RestoreError(AssertionError):
    pass


class Session:
    def __init__(self, matrix: Matrix, needed: dict[str, set[str]],
                 edits: list[EditRequest] | None = None, progress: Progress = silent) -> None:
        self.progress = progress
        self.matrix = matrix
        self.needed = needed  # group -> benchmarks some collected test asks for
        self.store = BaselineStore(matrix.cache_dir / "baselines")
        self.loaded: LoadedModel | None = None
        self.trajectories: dict[str, Trajectory] = {}
        self.active: Trajectory | None = None
        self.active_group: str | None = None
        self.restore_failures: list[str] = []
        self.failed_groups: dict[str, Outcome] = {}
        self.timings: dict[str, float] = {"load_s": 0.0, "baseline_s": 0.0, "prepare_s": 0.0}
        self._edits = edits  # loaded once by the plugin at start-up, or here on first use
        self.provenance: dict[str, dict[str, Any]] = {}
        self.group_timings: dict[str, dict[str, float]] = {}  # what setting up each group took

    # -- public -------------------------------------------------------------------------------
    def outcome(self, case: Case) -> tuple[Outcome, dict[str, Any]]:
        if case.group in self.failed_groups:
            return self.failed_groups[case.group], self.provenance.get(case.group, {})
        try:
            trajectory = self._trajectory(case)
        except Exception as err:  # a setup failure fails this group's tests, not the session
            failure = Outcome("error", message=f"could not set up {case.group}: "
                                               f"{type(err).__name__}: {err}{_raised_at(err)}")
            self.failed_groups[case.group] = failure
            return failure, self.provenance.get(case.group, {})
        outcome = trajectory.outcome(case.n_edits, case.benchmark)
        return outcome, self._row_provenance(case, trajectory)

    def finish(self) -> None:
        """Restore the live trajectory's weights; raise if any restore of this session left a
        byte different from the original."""
        self._close_active()
        if self.restore_failures:
            raise RestoreError("; ".join(self.restore_failures))

    # -- internals ----------------------------------------------------------------------------
    def _close_active(self) -> None:
        """Restore and verify the live trajectory. A failed restore is recorded against its own
        group (reported at session end), and the dirty model is dropped so that the next group
        reloads clean weights from disk instead of being scored on them."""
        if self.active is None:
            return
        trajectory, group = self.active, self.active_group
        self.active, self.active_group = None, None
        changed = trajectory.close()
        if changed:
            self.loaded = None
            self.restore_failures.append(
                f"{group}: restoring the model left {len(changed)} differences from the "
                f"original: {changed[:5]} (an editor changed parameters it did not declare, or "
                "left a hook or module installed)")

    def _model(self, label: str) -> LoadedModel:
        if self.loaded is not None and self.loaded.label == label:
            return self.loaded
        self.loaded = None  # free the previous model before loading the next
        start = time.perf_counter()
        self.progress(f"loading {label}", 0, 1)
        self.loaded = load(self.matrix.model_spec(label), editguard_home())
        self.progress(f"loading {label}", 1, 1)
        self.timings["load_s"] += time.perf_counter() - start
        return self.loaded

    def edits(self) -> list[EditRequest]:
        if self._edits is None:
            self._edits = load_edits(self.matrix)
        return self._edits

    def _trajectory(self, case: Case) -> Trajectory:
        group = case.group
        existing = self.trajectories.get(group)
        if existing is not None and (existing is self.active or case.n_edits in existing.outcomes):
            return existing
        self._close_active()  # first: a failed restore drops the model, and _model reloads it
        before = dict(self.timings)
        loaded = self._model(case.model)
        edits = self.edits()
        backend = backend_registry.create(self.matrix.backend, loaded.model, loaded.tokenizer)
        names = sorted(self.needed.get(group, {case.benchmark}))
        benchmarks = {n: self._benchmark(n, edits) for n in names}
        obtained = {n: self._baseline(loaded, backend, b) for n, b in benchmarks.items()}
        baselines = {n: result for n, (result, _) in obtained.items()}
        editor: Editor
        if self.matrix.edited is not None:  # a checkpoint edited elsewhere: its weights are the edit
            spec = f"{checkpoint.NAME}:{self.matrix.edited.source}"
            editor = checkpoint.Checkpoint(self.matrix.edited)
        else:
            spec = self.matrix.method_spec(case.method)
            editor = editor_registry.create(spec, self.matrix.method_options.get(case.method, {}))
        context = PrepareContext(fingerprint=loaded.fingerprint, cache_dir=self.matrix.cache_dir,
                                 corpus=load_corpus, seed=self.matrix.seed,
                                 progress=self.progress)
        start = time.perf_counter()
        editor.prepare(loaded.model, loaded.tokenizer, context)
        self.timings["prepare_s"] += time.perf_counter() - start
        trajectory = Trajectory(loaded=loaded, editor=editor, edits=edits,
                                checkpoints=self.matrix.n_edits,
                                batch_size=self.matrix.batch_size, benchmarks=benchmarks,
                                baselines=baselines, backend=backend,
                                whole=self.matrix.edited is not None, progress=self.progress)
        self.group_timings[group] = {k: v - before[k] for k, v in self.timings.items()}
        self.trajectories[group] = trajectory
        self.active, self.active_group = trajectory, group
        self.provenance[group] = {
            "model": {"source": loaded.spec.source, "path": loaded.path,
                      "fingerprint": loaded.fingerprint, "dtype": loaded.spec.dtype,
                      "device": str(loaded.device),
                      # the physical GPU behind "cuda:0" after xdist pinning (None: not pinned)
                      "visible_devices": os.environ.get(devices.VISIBLE),
                      # module -> device of a sharded load (--gpus-per-worker); {} otherwise
                      "device_map": {k: str(v) for k, v in
                                     (getattr(loaded.model, "hf_device_map", None) or {}).items()}},
            "backend": {"spec": self.matrix.backend, **backend.describe()},
            "method": {"spec": spec, "config": dict(editor.config),
                       "details": getattr(editor, "provenance", {})},
            "versions": versions(),
            # torch's compute threads in this process (a worker's share of the cores under -n)
            "host": {"cores": threads.available_cores(), "torch_threads": torch.get_num_threads()},
            # per benchmark: "read" from the cache, "computed", or "recomputed: <why>"
            "baselines": {n: status for n, (_, status) in obtained.items()},
        }
        return trajectory

    def _benchmark(self, name: str, edits: list[EditRequest]) -> Benchmark:
        return benchmark_registry.create(self.matrix.benchmark_spec(name),
                                         self.matrix.bench_options.get(name, {}),
                                         seed=self.matrix.seed, edits=edits)

    def _baseline(self, loaded: LoadedModel, backend: Backend,
                  bench: Benchmark) -> tuple[BenchmarkResult, str]:
        if self.active is not None and (self.active.applied or self.active.handle is not None):
            raise RuntimeError("refusing to compute a baseline on edited weights")
        parts = {"model": loaded.fingerprint, "benchmark": bench.name, "version": bench.version,
                 "config": bench.config(), "items": bench.content_digest(),
                 "backend": backend.describe()}

        def compute() -> BenchmarkResult:
            start = time.perf_counter()
            with scoring(backend, self.progress, f"{loaded.label}: baseline {bench.name}"):
                result = bench.evaluate(backend)
            self.timings["baseline_s"] += time.perf_counter() - start
            return result

        return self.store.get_or_compute(parts, compute)

    def _row_provenance(self, case: Case, trajectory: Trajectory) -> dict[str, Any]:
        bench = trajectory.benchmarks[case.benchmark]
        config = bench.config()
        config.pop("edits", None)
        return {**self.provenance[case.group],
                "edits": {"source": self.matrix.edits, "seed": self.matrix.seed,
                          "batch_size": self.matrix.batch_size,
                          "case_ids": [e.case_id for e in trajectory.edits[: case.n_edits]]},
                "benchmark": {"version": bench.version, "config": config},
                "editor": trajectory.diagnostics(case.n_edits),
                # this group's own: its model load (if it loaded one), baselines, preparation
                "timings": {**{k: round(v, 2) for k, v in
                               self.group_timings.get(case.group, {}).items()},
                            **{k: round(v, 2) for k, v in trajectory.timings.items()}}}


def _raised_at(err: BaseException) -> str:
    """`` (raised at file.py:LINE in function)``: where a setup error came from, so that a bug
    in an editor or benchmark can be found without a traceback."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (raised at {Path(last.filename).name}:{last.lineno} in {last.name})"
