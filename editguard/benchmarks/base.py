"""What every benchmark is and returns. Per-item scores are kept for paired statistics."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from editguard.backends.base import Backend
from editguard.benchmarks.selection import choose, ids_digest, read_item_ids, select, subset
from editguard.edits.request import EditRequest
from editguard.kinds import Kind
from editguard.settings import build

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    primary: bool = False
    higher_is_better: bool = True


@dataclasses.dataclass(frozen=True)
class BenchmarkResult:
    benchmark: str
    version: str
    config: dict[str, Any]
    item_ids: tuple[str, ...]
    scores: dict[str, tuple[float, ...]]  # metric -> one score per item, aligned with item_ids
    texts: tuple[str, ...] | None = None  # generated text per item, when the benchmark keeps it
    truncated: int = 0  # inputs the backend cut from the left to fit the model

    def defined(self, metric: str) -> list[float]:
        """The item scores that are defined (NaN marks an item the metric does not apply to,
        or one a broken model could not answer)."""
        return [v for v in self.scores[metric] if math.isfinite(v)]

    def value(self, metric: str) -> float:
        values = self.defined(metric)
        return math.fsum(values) / len(values) if values else math.nan

    def stderr(self, metric: str) -> float:
        """Sample standard deviation / sqrt(n), as lm-evaluation-harness reports it."""
        values = self.defined(metric)
        n = len(values)
        if n < 2:
            return math.nan
        mean = math.fsum(values) / n
        return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1) / n)

    def subset(self, ids: Sequence[str]) -> "BenchmarkResult":
        index = {item: i for i, item in enumerate(self.item_ids)}
        missing = [i for i in ids if i not in index]
        if missing:
            raise KeyError(f"{self.benchmark}: items {missing[:5]} are not in this result")
        keep = [index[i] for i in ids]
        return dataclasses.replace(self, item_ids=tuple(ids), scores={
            m: tuple(v[k] for k in keep) for m, v in self.scores.items()},
            texts=None if self.texts is None else tuple(self.texts[k] for k in keep))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"benchmark": self.benchmark, "version": self.version,
               "config": self.config,
               "item_ids": list(self.item_ids),
               "scores": {m: [None if not math.isfinite(x) else x for x in v]
                          for m, v in self.scores.items()}}
        if self.texts is not None:
            out["texts"] = list(self.texts)
        if self.truncated:
            out["truncated"] = self.truncated
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BenchmarkResult":
        return cls(benchmark=data["benchmark"], version=data["version"], config=data["config"],
                   item_ids=tuple(data["item_ids"]),
                   scores={m: tuple(math.nan if x is None else float(x) for x in v)
                           for m, v in data["scores"].items()},
                   texts=tuple(data["texts"]) if "texts" in data else None,
                   truncated=int(data.get("truncated", 0)))


class Benchmark:
    """A scored task. Subclasses set the class attributes, ``settings`` (a dataclass of options,
    validated strictly) and implement ``evaluate``. ``config()`` is everything that changes the
    scores; it goes into the baseline key."""

    name: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[Kind]
    metrics: ClassVar[tuple[Metric, ...]]
    settings: ClassVar[type]
    needs_edits: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, object] | None = None, *, seed: int = 0,
                 edits: Sequence[EditRequest] = ()) -> None:
        # an instance of ``settings``; each subclass reads it as its own settings type
        self.options: Any = build(self.settings, dict(options or {}), f"benchmark {self.name}")
        self.seed = seed
        self.edits = tuple(edits)

    @classmethod
    def primary_metric(cls) -> str:
        return next(m.name for m in cls.metrics if m.primary)

    def config(self) -> dict[str, Any]:
        out = {"options": dataclasses.asdict(self.options), "seed": self.seed}
        item_file = getattr(self.options, "items", "")
        if item_file:  # the ids, not the path, decide the scores
            out["items_sha256"] = ids_digest(read_item_ids(item_file, f"benchmark {self.name}"))
        if self.needs_edits:  # the contents, not just the ids: a baseline must not outlive them
            records = [dataclasses.asdict(e) for e in self.edits]
            out["edits"] = {"ids": [e.case_id for e in self.edits],
                            "sha256": hashlib.sha256(json.dumps(records, sort_keys=True)
                                                     .encode()).hexdigest()}
        return out

    def evaluate(self, backend: Backend, item_ids: Sequence[str] | None = None) -> BenchmarkResult:
        raise NotImplementedError

    def content_digest(self) -> str | None:
        """sha256 of what the benchmark scores (every selected item: id, prompt, choices,
        answer), part of the baseline key, so that a baseline never outlives a change of data
        or prompt that kept the benchmark's name, version and options. None for a benchmark
        without ``items()`` (its ``config()`` must say what its scores depend on)."""
        items = getattr(self, "items", None)
        if items is None:
            return None
        payload = json.dumps(items(), sort_keys=True, default=_plain, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def check(self) -> None:
        """Validate the options against the data before any model loads (the run's start-up);
        raise ValueError naming the bad value and the fix. The default reads the item file."""
        item_file = getattr(self.options, "items", "")
        if item_file:
            read_item_ids(item_file, f"benchmark {self.name}")

    def select(self, pool: Sequence[T], key: Callable[[T], str]) -> list[T]:
        """The items of ``pool`` to score: the ``items`` file's ids when the settings name one,
        else the seeded ``limit`` sample."""
        return select(pool, key, limit=self.options.limit, items=getattr(self.options, "items", ""),
                      seed=self.seed, where=f"benchmark {self.name}")

    def result(self, item_ids: Sequence[str], scores: Mapping[str, Sequence[float]]
               ) -> BenchmarkResult:
        return BenchmarkResult(self.name, self.version, self.config(), tuple(item_ids),
                               {m: tuple(float(x) for x in v) for m, v in scores.items()})


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot digest a {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class Choice:
    """A multiple-choice item: ``context`` followed by each of ``continuations``."""

    id: str
    context: str
    continuations: tuple[str, ...]
    answer: int


class MultipleChoice(Benchmark):
    """A benchmark scored as 1 when the right continuation is the most likely one. Subclasses
    build the scored items in ``items`` (the limited, seeded subset, in a fixed order)."""

    def items(self) -> list[Choice]:
        raise NotImplementedError

    def evaluate(self, backend: Backend, item_ids: Sequence[str] | None = None) -> BenchmarkResult:
        chosen = restrict(self.items(), item_ids, lambda c: c.id)
        before = getattr(backend, "truncated", 0)
        scores = multiple_choice(backend, [c.context for c in chosen],
                                 [c.continuations for c in chosen])
        values: dict[str, list[float]] = {m.name: [] for m in self.metrics}
        for lls, choice in zip(scores, chosen, strict=True):
            for metric, value in self.score_choices(lls, choice).items():
                values[metric].append(value)
        result = self.result([c.id for c in chosen], values)
        return dataclasses.replace(result, truncated=getattr(backend, "truncated", 0) - before)

    def score_choices(self, scores: Sequence[float], choice: Choice) -> dict[str, float]:
        """Metric -> value from one item's summed log-likelihoods, one per continuation: by
        default 1 when ``choice.answer`` is the most likely."""
        return {self.primary_metric(): correct(scores, choice.answer)}


def restrict(items: Sequence[T], item_ids: Sequence[str] | None,
             key: Callable[[T], str]) -> list[T]:
    """``items`` whose ids are in ``item_ids`` (all of them when it is None), in their order."""
    if item_ids is None:
        return list(items)
    wanted = set(item_ids)
    return [x for x in items if key(x) in wanted]


def multiple_choice(backend: Backend, contexts: Sequence[str],
                    choices: Sequence[Sequence[str]]) -> list[list[float]]:
    """Summed log-likelihood of each choice (continuations as given) after its context."""
    flat = [(c, x) for c, xs in zip(contexts, choices, strict=True) for x in xs]
    scores = [r.logprob for r in backend.loglikelihood(flat)]
    out, at = [], 0
    for xs in choices:
        out.append(scores[at : at + len(xs)])
        at += len(xs)
    return out


def correct(values: Sequence[float], gold: int) -> float:
    """1.0 if choice ``gold`` has the largest score, else 0.0; NaN if any score is not finite
    (a collapsed model has no answer, and NaN lets the caller tell it from a wrong one)."""
    if any(not math.isfinite(v) for v in values):
        return math.nan
    return float(max(range(len(values)), key=lambda i: values[i]) == gold)
