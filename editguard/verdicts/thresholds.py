"""Pass/fail limits on benchmark metrics, read from a TOML file and command-line overrides."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from editguard.suggest import did_you_mean

HINT = "; did you mean {!r}?"

Kind = Literal["max_drop", "min"]
KINDS: tuple[Kind, ...] = ("max_drop", "min")

# Float noise allowance, in score units: a drop shown as "2.0 pt" must not fail a 2.0 pt limit
# because 100 * (0.652 - 0.632) == 2.0000000000000018.
TOLERANCE = 1e-9

_RANGE: dict[Kind, tuple[float, float, str]] = {
    "max_drop": (0.0, 100.0, "points in [0, 100]"),
    "min": (0.0, 1.0, "a score in [0, 1]"),
}
_OPTION: dict[Kind, tuple[str, str]] = {  # CLI flag, example value
    "max_drop": ("--max-drop", "mmlu.acc=2.0"),
    "min": ("--min-score", "efficacy.rewrite=0.9"),
}
_PLACEHOLDER: dict[Kind, str] = {"max_drop": "POINTS", "min": "SCORE"}
_FILE_SHAPE = (
    'expected only [thresholds.max_drop] and [thresholds.min] tables of "BENCHMARK[.METRIC]" = '
    'NUMBER, e.g.\n  [thresholds.max_drop]\n  "mmlu.acc" = 5.0\n  [thresholds.min]\n'
    '  "efficacy.rewrite" = 0.9'
)


class ThresholdError(ValueError):
    """A threshold that cannot be parsed, is out of range, or names an unknown metric."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def _fmt_limit(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text if float(text) == value else f"{value:g}"


def _range_problem(kind: Kind, value: object) -> str | None:
    """Why ``value`` is not a valid limit of ``kind``, or None when it is."""
    low, high, accepted = _RANGE[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number (expected {accepted})"
    if not math.isfinite(value):
        return f"{value!r} is not finite (expected {accepted})"
    if not low <= value <= high:
        return f"{value!r} is out of range (expected {accepted})"
    return None


def _split_key(key: str) -> tuple[str, str | None] | None:
    """``"mmlu.acc"`` -> ``("mmlu", "acc")``, ``"mmlu"`` -> ``("mmlu", None)``, else None."""
    benchmark, dot, metric = key.strip().partition(".")
    if not benchmark or (dot and not metric) or any(c.isspace() for c in key.strip()):
        return None
    return benchmark, (metric if dot else None)


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A limit on one metric; ``metric=None`` means the benchmark's primary metric."""

    benchmark: str
    metric: str | None
    kind: Kind
    limit: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ThresholdError(
                f"threshold kind {self.kind!r} is unknown; expected one of {', '.join(KINDS)}"
            )
        problem = _range_problem(self.kind, self.limit)
        if problem:
            raise ThresholdError(f"{self.kind} threshold {self.key!r}: {problem}")

    @property
    def key(self) -> str:
        return self.benchmark if self.metric is None else f"{self.benchmark}.{self.metric}"

    def describe(self) -> str:
        if self.kind == "max_drop":
            return f"drop <= {_fmt_limit(self.limit, 1)} pt"
        return f">= {_fmt_limit(self.limit, 2)}"

    def check(
        self, baseline: float | None, edited: float, case: str, *, metric: str | None = None
    ) -> Verdict:
        """Judge ``edited`` (and ``baseline`` for max_drop); ``metric`` names a primary metric."""
        label = " ".join(filter(None, [self.benchmark, self.metric or metric]))
        edited_nan = edited is None or math.isnan(edited)
        if self.kind == "min":
            minimum = f"minimum {self.limit:.3f}"
            if edited_nan:
                return Verdict(False, f"{label} has no score (nan), {minimum} [{case}]")
            if edited >= self.limit - TOLERANCE:
                return Verdict(True, f"{label} {edited:.3f} >= {minimum} [{case}]")
            return Verdict(False, f"{label} {edited:.3f} below {minimum} [{case}]")
        if baseline is None:
            raise ThresholdError(
                f"max_drop threshold {self.key!r} needs a baseline score for [{case}] but got "
                "None; evaluate the unedited model first, or use a [thresholds.min] limit"
            )
        limit = f"limit {_fmt_limit(self.limit, 1)} pt"
        if edited_nan:
            reason = f"{label} has no score (nan), was {baseline:.3f}, {limit} [{case}]"
            return Verdict(False, reason)
        drop = 100.0 * (baseline - edited)
        scores = f"({baseline:.3f} -> {edited:.3f})"
        if drop <= self.limit + 100.0 * TOLERANCE:
            return Verdict(True, f"{label} changed {-drop:+.1f} pt {scores}, {limit} [{case}]")
        return Verdict(False, f"{label} dropped {drop:.1f} pt {scores}, {limit} [{case}]")


def _parse_file(path: Path) -> dict[tuple[Kind, str], float]:
    where = f"thresholds file {str(path)!r}"
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ThresholdError(
            f"{where} does not exist; pass an existing TOML file or leave the option out"
        ) from None
    except OSError as exc:
        raise ThresholdError(f"{where} cannot be read ({exc}); check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdError(f"{where} is not valid TOML ({exc}); {_FILE_SHAPE}") from None
    unknown = sorted(set(data) - {"thresholds"})
    if unknown:
        raise ThresholdError(f"{where}: unknown top-level key(s) {unknown}; {_FILE_SHAPE}")
    tables = data.get("thresholds", {})
    if not isinstance(tables, dict):
        raise ThresholdError(f"{where}: 'thresholds' = {tables!r} is not a table; {_FILE_SHAPE}")
    unknown = sorted(set(tables) - set(KINDS))
    if unknown:
        raise ThresholdError(
            f"{where}: unknown table(s) {['thresholds.' + u for u in unknown]}; {_FILE_SHAPE}"
        )
    out: dict[tuple[Kind, str], float] = {}
    for kind in KINDS:
        entries = tables.get(kind, {})
        if not isinstance(entries, dict):
            raise ThresholdError(
                f"{where}: thresholds.{kind} = {entries!r} is not a table; {_FILE_SHAPE}"
            )
        for key, value in entries.items():
            entry = f"{where}: [thresholds.{kind}] {key!r} = {value!r}"
            if isinstance(value, dict):
                inner = next(iter(value), "METRIC")
                raise ThresholdError(
                    f"{entry}: a dotted key makes a table, expected a number; quote the key, "
                    f'e.g. "{key}.{inner}" = ...'
                )
            if _split_key(key) is None:
                raise ThresholdError(
                    f'{entry}: expected a key "BENCHMARK[.METRIC]", e.g. "mmlu.acc"; fix the key'
                )
            problem = _range_problem(kind, value)
            if problem:
                raise ThresholdError(f"{entry}: {problem}; fix the value")
            out[(kind, key.strip())] = float(value)
    return out


def _parse_option(kind: Kind, text: str) -> dict[tuple[Kind, str], float]:
    flag, example = _OPTION[kind]
    form = f"expected BENCHMARK[.METRIC]={_PLACEHOLDER[kind]}, e.g. {flag} {example}"
    out: dict[tuple[Kind, str], float] = {}
    for item in text.split(","):
        key, eq, raw = item.partition("=")
        if not eq or _split_key(key) is None:
            raise ThresholdError(f"{flag} {item!r}: {form} (several may be comma-separated)")
        try:
            value = float(raw)
        except ValueError:
            raise ThresholdError(
                f"{flag} {item!r}: {raw.strip()!r} is not a number; {form}"
            ) from None
        problem = _range_problem(kind, value)
        if problem:
            raise ThresholdError(f"{flag} {item!r}: {problem}; fix it, e.g. {flag} {example}")
        out[(kind, key.strip())] = value
    return out


@dataclasses.dataclass(frozen=True)
class ThresholdSet:
    """All thresholds of a run, at most one per (key, kind)."""

    thresholds: tuple[Threshold, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        seen: set[tuple[str, str]] = set()
        for threshold in self.thresholds:
            ident = (threshold.key, threshold.kind)
            if ident in seen:
                raise ThresholdError(
                    f"two {threshold.kind} thresholds for {threshold.key!r}; keep only one"
                )
            seen.add(ident)

    @classmethod
    def from_sources(
        cls, path: Path | None, max_drop: Sequence[str] = (), min_score: Sequence[str] = ()
    ) -> ThresholdSet:
        """Read ``path`` (TOML), then let ``--max-drop``/``--min-score`` strings override it."""
        if isinstance(max_drop, str) or isinstance(min_score, str):
            raise TypeError("max_drop and min_score take a sequence of strings, not one string")
        limits = _parse_file(Path(path)) if path is not None else {}
        sources: dict[Kind, Sequence[str]] = {"max_drop": max_drop, "min": min_score}
        for kind, texts in sources.items():
            for text in texts:
                limits.update(_parse_option(kind, text))
        thresholds = []
        for (kind, key), limit in limits.items():
            split = _split_key(key)
            assert split is not None  # checked while parsing
            thresholds.append(Threshold(split[0], split[1], kind, limit))
        return cls(tuple(thresholds))

    def lookup(self, benchmark: str, metric: str, primary: bool) -> list[Threshold]:
        """Thresholds on ``benchmark.metric``; bare-``benchmark`` ones too if it is primary."""
        explicit = [t for t in self.thresholds if t.benchmark == benchmark and t.metric == metric]
        if not primary:
            return explicit
        kinds = {t.kind for t in explicit}
        bare = [
            t
            for t in self.thresholds
            if t.benchmark == benchmark and t.metric is None and t.kind not in kinds
        ]
        return explicit + bare

    def validate(self, known: Mapping[str, Sequence[str]]) -> None:
        """Raise if a threshold names a benchmark or metric not in ``known`` (name -> metrics)."""
        problems = []
        for t in self.thresholds:
            what = f"{t.kind} threshold {t.key!r}"
            if t.benchmark not in known:
                problems.append(
                    f"{what}: unknown benchmark {t.benchmark!r}; known benchmarks: "
                    f"{', '.join(sorted(known)) or '(none)'}{did_you_mean(t.benchmark, known, HINT)}"
                )
            elif t.metric is not None and t.metric not in known[t.benchmark]:
                metrics = known[t.benchmark]
                problems.append(
                    f"{what}: unknown metric {t.metric!r} of benchmark {t.benchmark!r}; known "
                    f"metrics: {', '.join(metrics) or '(none)'}{did_you_mean(t.metric, metrics, HINT)}"
                )
        if problems:
            raise ThresholdError(
                "\n".join(problems)
                + "\nfix the key in the thresholds file or the --max-drop/--min-score option"
            )

    def to_dict(self) -> dict[str, Any]:
        """The thresholds in the file's shape: ``{"max_drop": {key: limit}, "min": {...}}``."""
        out: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
        for t in self.thresholds:
            out[t.kind][t.key] = t.limit
        return out
