"""The test matrix: command-line options -> validated (model, method, n_edits, benchmark) cases."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from editguard import kinds, settings
from editguard.backends import registry as backend_registry
from editguard.benchmarks import registry as benchmark_registry
from editguard.case import Case
from editguard.editors import checkpoint
from editguard.editors import registry as editor_registry
from editguard.edits.sources import load_edit_source
from editguard.models.spec import DTYPES, ModelSpec, model_label
from editguard.verdicts.thresholds import ThresholdSet


class MatrixError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Matrix:
    models: tuple[ModelSpec, ...]
    methods: tuple[str, ...]  # registry names or package.module:Class paths
    n_edits: tuple[int, ...]
    benchmarks: tuple[str, ...]  # registry names or package.module:Class paths
    batch_size: int
    edits: str
    seed: int
    bench_options: dict[str, dict[str, Any]]
    method_options: dict[str, dict[str, Any]]
    cache_dir: Path
    thresholds: ThresholdSet
    backend: str = "hf"  # a backend registry name or package.module:Class path
    edited: ModelSpec | None = None  # a checkpoint edited elsewhere, gated against ``models[0]``
    easyedit: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> YAML read
    notices: tuple[str, ...] = ()  # said at start-up (EasyEdit keys with no counterpart)

    def method_labels(self) -> list[str]:
        if self.edited is not None:
            return [checkpoint.method_label(self.edited)]
        return [method_label(m) for m in self.methods]

    def model_spec(self, label: str) -> ModelSpec:
        return next(m for m in self.models if m.label == label)

    def method_spec(self, label: str) -> str:
        return next(m for m in self.methods if method_label(m) == label)

    def benchmark_spec(self, label: str) -> str:
        return next(b for b in self.benchmarks if benchmark_registry.label(b) == label)

    def cases(self, kind: str) -> list[Case]:
        out = []
        for bench in self.benchmarks:
            bench_kind = benchmark_registry.resolve(bench).kind
            if bench_kind != kind:
                continue
            for model in self.models:
                for method in self.method_labels():
                    for n in self.n_edits:
                        out.append(Case(model.label, method, n,
                                        benchmark_registry.label(bench), bench_kind))
        return sorted(out, key=Case.sort_key)

    def ci_drop_verdicts(self) -> int:
        """How many (case, metric) verdicts of this matrix are drops judged in ci mode."""
        count = 0
        for kind in kinds.KINDS:
            for case in self.cases(kind):
                bench = benchmark_registry.resolve(self.benchmark_spec(case.benchmark))
                for metric in bench.metrics:
                    count += any(t.kind == "max_drop" and t.mode == "ci" for t in
                                 self.thresholds.lookup(case.benchmark, metric.name,
                                                        metric.primary))
        return count

    def to_dict(self) -> dict[str, Any]:
        return {"models": [dataclasses.asdict(m) for m in self.models],
                "methods": list(self.methods), "n_edits": list(self.n_edits),
                "benchmarks": list(self.benchmarks), "batch_size": self.batch_size,
                "edits": self.edits, "seed": self.seed, "bench_options": self.bench_options,
                "method_options": self.method_options, "thresholds": self.thresholds.to_dict(),
                "backend": self.backend, "easyedit_yaml": self.easyedit,
                "edited": None if self.edited is None else dataclasses.asdict(self.edited)}


def method_label(spec: str) -> str:
    return editor_registry.EDITORS.label(spec)


def split(values: Sequence[str] | str | None) -> list[str]:
    """Comma-separated and/or repeated option values -> a flat list, order kept, no blanks."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def parse_value(raw: str) -> Any:
    """A TOML scalar (``5``, ``0.5``, ``true``, ``"x"``, ``[3, 4]``); bare words are strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_options(values: Sequence[str], option: str, known: Sequence[str]
                  ) -> dict[str, dict[str, Any]]:
    """``["mmlu.limit=50", "rome.layer=6"]`` -> ``{"mmlu": {"limit": 50}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in values:
        match = re.fullmatch(r"([\w.:-]+?)\.(\w+)=(.+)", item.strip())
        if match is None:
            raise MatrixError(f"{option} {item!r}: expected NAME.KEY=VALUE, e.g. "
                              f"{option} {known[0] if known else 'name'}.limit=50")
        name, key, raw = match.groups()
        if name not in known:
            raise MatrixError(f"{option} {item!r}: {name!r} is not in this run; it names one of "
                              f"{', '.join(known)}")
        out.setdefault(name, {})[key] = parse_value(raw)
    return out


def parse_n_edits(values: Sequence[str]) -> tuple[int, ...]:
    out = set()
    for raw in values:
        try:
            n = int(raw)
        except ValueError:
            raise MatrixError(f"--n-edits {raw!r} is not an integer; give positive counts such "
                              "as --n-edits 1,10,30") from None
        if n < 1:
            raise MatrixError(f"--n-edits {n} must be at least 1")
        out.add(n)
    if not out:
        raise MatrixError("--n-edits is empty; give counts such as --n-edits 1,10,30")
    return tuple(sorted(out))


def build(*, models: Sequence[str], methods: Sequence[str], n_edits: Sequence[str],
          benchmarks: Sequence[str], batch_size: int, edits: str, seed: int,
          bench_opts: Sequence[str], method_opts: Sequence[str], dtype: str, device: str,
          trust_remote_code: bool, cache_dir: Path, thresholds_file: Path | None,
          max_drop: Sequence[str], min_score: Sequence[str], backend: str = "hf",
          verdict_mode: str | None = None, confidence: float | None = None,
          edited: str | None = None, holm: bool = False, gpus_per_worker: int = 1) -> Matrix:
    """Validate everything a run needs that can be checked without loading a model. With
    ``edited`` (a checkpoint edited elsewhere), ``models`` is its one base model, no method
    runs, and the one n_edits is the number of edits in the edit file (0 without one)."""
    if list(methods) == ["all"]:  # every registered method, in the registry's (sorted) order
        methods = editor_registry.available()
    checkpoint_spec, counts = None, None
    if edited is not None:
        checkpoint_spec, count = _edited(edited, models=models, methods=methods, n_edits=n_edits,
                                         benchmarks=benchmarks, edits=edits, seed=seed,
                                         method_opts=method_opts, batch_size=batch_size,
                                         dtype=dtype, device=device,
                                         trust_remote_code=trust_remote_code,
                                         gpus_per_worker=gpus_per_worker)
        counts = (count,)
    if not models or not (methods or edited) or not benchmarks:
        raise MatrixError("--models, --methods and --benchmarks each need at least one value")
    if dtype not in DTYPES:
        raise MatrixError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if batch_size < 1:
        raise MatrixError(f"--batch-size {batch_size} must be at least 1")
    if gpus_per_worker < 1:
        raise MatrixError(f"--gpus-per-worker {gpus_per_worker} must be at least 1")
    if gpus_per_worker > 1 and device != "auto":
        raise MatrixError(f"--gpus-per-worker {gpus_per_worker} splits each model over its "
                          f"worker's accelerators, and --device {device} names one device; "
                          "leave --device at auto")
    bench_labels = [benchmark_registry.label(name) for name in benchmarks]  # resolves each
    if len(set(bench_labels)) != len(bench_labels):
        raise MatrixError(f"--benchmarks {','.join(benchmarks)} names a benchmark twice")
    for name in benchmarks:
        kinds.check(benchmark_registry.resolve(name).kind, f"benchmark {name!r}")
    backend_cls = backend_registry.resolve(backend)
    if not getattr(backend_cls, "can_generate", True):
        from editguard.benchmarks.generative import Generative

        generating = [b for b in benchmarks
                      if issubclass(benchmark_registry.resolve(b), Generative)]
        if generating:
            raise MatrixError(f"--backend {backend}: it cannot generate text, and "
                              f"{', '.join(generating)} generate; use --backend hf or leave "
                              "them out of --benchmarks")
    labels = []
    for spec in methods:
        cls = editor_registry.resolve(spec)
        if batch_size > 1 and not getattr(cls, "supports_batch", True):
            raise MatrixError(f"--batch-size {batch_size}: method {spec!r} edits one fact at a "
                              "time; use --batch-size 1 or leave it out of --methods")
        labels.append(method_label(spec))
    if len(set(labels)) != len(labels):
        raise MatrixError(f"--methods {','.join(methods)} names a method twice")
    model_specs = tuple(ModelSpec(m, dtype, device, trust_remote_code, gpus_per_worker)
                        for m in dict.fromkeys(models))
    if len({m.label for m in model_specs}) != len(model_specs):
        raise MatrixError(f"--models {','.join(models)}: two models share the short name "
                          f"{[m.label for m in model_specs]}; give them distinct directory names")
    thresholds = ThresholdSet.from_sources(thresholds_file, max_drop, min_score, verdict_mode,
                                           confidence, holm)
    known = {**benchmark_registry.metric_names(),
             **benchmark_registry.metric_names(list(dict.fromkeys(benchmarks)))}
    thresholds.validate(known)
    bench_options = parse_options(bench_opts, "--bench-opt", bench_labels)
    for spec, label in zip(benchmarks, bench_labels):  # keys, types and ranges, before any load
        settings.build(benchmark_registry.resolve(spec).settings, bench_options.get(label, {}),
                       f"--bench-opt {label}")
        try:  # the options against the data: item files, subjects, shots, data offline
            benchmark_registry.create(spec, bench_options.get(label, {}), seed=seed).check()
        except (ValueError, OSError) as err:
            raise MatrixError(f"--bench-opt {label}: {err}") from None
    method_options = parse_options(method_opts, "--method-opt", labels)
    easyedit_files, notices = _easyedit(method_options)
    for spec, label in zip(methods, labels):
        schema = getattr(editor_registry.resolve(spec), "settings", None)
        if dataclasses.is_dataclass(schema) and isinstance(schema, type):
            settings.build(schema, method_options.get(label, {}), f"--method-opt {label}")
    matrix = Matrix(models=model_specs, methods=tuple(dict.fromkeys(methods)),
                  n_edits=counts or parse_n_edits(n_edits),
                  benchmarks=tuple(dict.fromkeys(benchmarks)),
                  batch_size=batch_size, edits=edits, seed=seed, bench_options=bench_options,
                  method_options=method_options, cache_dir=cache_dir, thresholds=thresholds,
                  backend=backend, edited=checkpoint_spec, easyedit=easyedit_files,
                  notices=notices)
    if not thresholds.holm:
        return matrix
    family = matrix.ci_drop_verdicts()
    if family == 0:
        raise MatrixError("--holm corrects ci-mode drop verdicts, and this run takes none; pass "
                          "--verdict-mode ci, or set mode = \"ci\" on a max_drop limit of the "
                          "thresholds file")
    return dataclasses.replace(matrix, thresholds=dataclasses.replace(thresholds, family=family))


def _easyedit(method_options: dict[str, dict[str, Any]]
              ) -> tuple[dict[str, str], tuple[str, ...]]:
    """Replace each method's ``easyedit_yaml`` option by the settings the file maps to (the
    method's other options win); the files read, and a notice per file with unmapped keys."""
    from editguard.editors.easyedit import EasyEditConfigError, translate

    files: dict[str, str] = {}
    notices: list[str] = []
    for label, options in method_options.items():
        if "easyedit_yaml" not in options:
            continue
        path = str(options.pop("easyedit_yaml"))
        try:
            mapped, unmapped = translate(label, path)
        except EasyEditConfigError as err:
            raise MatrixError(f"--method-opt {err}") from None
        method_options[label] = {**mapped, **options}
        files[label] = path
        if unmapped:
            notices.append(f"--method-opt {label}.easyedit_yaml={path}: EasyEdit keys with no "
                           f"editguard counterpart, not used: {', '.join(unmapped)}")
    return files, tuple(notices)


def _edited(edited: str, *, models: Sequence[str], methods: Sequence[str], n_edits: Sequence[str],
            benchmarks: Sequence[str], edits: str, seed: int, method_opts: Sequence[str],
            batch_size: int, dtype: str, device: str, trust_remote_code: bool,
            gpus_per_worker: int = 1) -> tuple[ModelSpec, int]:
    """The checkpoint's spec and its one n_edits: the edits in its edit file (0 without)."""
    if len(models) != 1:
        raise MatrixError(f"--edited {edited!r} is gated against one base model; pass --base "
                          "PATH_OR_ID (the model it was edited from)")
    if methods or n_edits or method_opts or batch_size != 1:
        raise MatrixError(f"--edited {edited!r}: no editor runs on a checkpoint edited elsewhere; "
                          "leave out --methods, --n-edits, --method-opt and --batch-size")
    if edits == "embedded" and any(benchmark_registry.label(b) == "efficacy" for b in benchmarks):
        raise MatrixError(f"--edited {edited!r}: efficacy needs the facts that were edited; pass "
                          "the edit file, e.g. --edits counterfact:FILE or --edits zsre:FILE, or "
                          "leave efficacy out of --benchmarks")
    try:
        count = 0 if edits == "embedded" else len(load_edit_source(edits, seed))
    except (ValueError, FileNotFoundError) as err:
        raise MatrixError(f"--edits {edits!r}: {err}") from None
    spec = ModelSpec(edited, dtype, device, trust_remote_code, gpus_per_worker)
    if spec.label == model_label(models[0]):
        raise MatrixError(f"--edited {edited!r} and --base {models[0]!r} share the short name "
                          f"{spec.label!r}; give the checkpoint a directory name of its own")
    return spec, count
