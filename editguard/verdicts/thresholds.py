"""Pass/fail limits on benchmark metrics, read from a TOML file and command-line overrides.

Each limit is judged in a verdict mode (``MODES``): ``point`` compares the point estimate with
the limit; ``ci`` fails only when the whole confidence interval is past the limit (damage is
shown); ``noninferiority`` passes only when the whole interval is within it (no damage is shown).
"""

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
Mode = Literal["point", "ci", "noninferiority"]
MODES: tuple[Mode, ...] = ("point", "ci", "noninferiority")
DEFAULT_MODE: Mode = "point"  # README "Statistics": why
DEFAULT_CONFIDENCE = 0.95

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
    'NUMBER (or = { limit = NUMBER, mode = "ci" }), and an optional [verdict] table, e.g.\n'
    '  [verdict]\n  mode = "point"\n  confidence = 0.95\n'
    '  [thresholds.max_drop]\n  "mmlu.acc" = 5.0\n  [thresholds.min]\n'
    '  "efficacy.rewrite" = { limit = 0.9, mode = "noninferiority" }'
)
_MODE_HELP = f"expected one of {', '.join(MODES)}"


class ThresholdError(ValueError):
    """A threshold that cannot be parsed, is out of range, or names an unknown metric."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    mode: Mode = DEFAULT_MODE


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What an interval-based verdict needs: the confidence intervals, in score units, of the
    paired delta (edited - baseline; for max_drop) and of the edited score (for min)."""

    n: int  # items scored by both models
    confidence: float
    delta: tuple[float, float] | None = None
    edited: tuple[float, float] | None = None
    # with --holm: the one-sided p-value of "the drop is within the limit" and the number of
    # ci-mode drop verdicts the run takes (a ci drop verdict then fails when p < alpha / family)
    p_damage: float | None = None
    family: int = 0


def one_sided_alpha(confidence: float) -> float:
    """The error rate of one bound of a two-sided interval: 0.025 at 95%."""
    return (1.0 - confidence) / 2.0


def p_damage(delta: float, se: float, limit_pt: float) -> float:
    """One-sided p-value of H0 "the true drop is within ``limit_pt``" (delta >= -limit), by the
    normal approximation with the bootstrap standard error ``se`` of ``delta``."""
    from scipy import stats

    if se <= 0:
        return 0.0 if delta < -limit_pt / 100.0 else 1.0
    return float(stats.norm.cdf((delta + limit_pt / 100.0) / se))


def check_mode(value: object, where: str) -> Mode:
    """``value`` as a verdict mode, or a ThresholdError saying what ``where`` accepts."""
    for mode in MODES:
        if value == mode:
            return mode
    hint = did_you_mean(str(value), MODES, HINT) if isinstance(value, str) else ""
    raise ThresholdError(f"{where}: verdict mode {value!r} is unknown; {_MODE_HELP}{hint}")


def check_confidence(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1:
        raise ThresholdError(f"{where}: confidence {value!r} is not a number in [0.5, 1), e.g. "
                             "0.95")
    return float(value)


def _pt(value: float) -> str:
    return f"{100.0 * value:+.1f}"


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
    mode: Mode | None = None  # None: the run's mode (ThresholdSet.mode) decides

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ThresholdError(
                f"threshold kind {self.kind!r} is unknown; expected one of {', '.join(KINDS)}"
            )
        problem = _range_problem(self.kind, self.limit)
        if problem:
            raise ThresholdError(f"{self.kind} threshold {self.key!r}: {problem}")
        if self.mode is not None:
            check_mode(self.mode, f"{self.kind} threshold {self.key!r}")

    @property
    def key(self) -> str:
        return self.benchmark if self.metric is None else f"{self.benchmark}.{self.metric}"

    def describe(self) -> str:
        if self.kind == "max_drop":
            return f"drop <= {_fmt_limit(self.limit, 1)} pt"
        return f">= {_fmt_limit(self.limit, 2)}"

    def check(
        self, baseline: float | None, edited: float, case: str, *, metric: str | None = None,
        evidence: Evidence | None = None,
    ) -> Verdict:
        """Judge ``edited`` (and ``baseline`` for max_drop) in this threshold's mode (point when
        unset); ``metric`` names a primary metric; ``ci`` and ``noninferiority`` need
        ``evidence``, and a point verdict quotes it when given."""
        mode = self.mode or DEFAULT_MODE
        label = " ".join(filter(None, [self.benchmark, self.metric or metric]))
        edited_nan = edited is None or math.isnan(edited)
        if self.kind == "max_drop" and baseline is None:
            raise ThresholdError(
                f"max_drop threshold {self.key!r} needs a baseline score for [{case}] but got "
                "None; evaluate the unedited model first, or use a [thresholds.min] limit"
            )
        bounds = None
        if evidence is not None:
            bounds = evidence.delta if self.kind == "max_drop" else evidence.edited
        if mode != "point" and bounds is None and not edited_nan:
            if evidence is None:  # a caller's mistake, not the data's
                raise ThresholdError(f"{mode} verdict on {label} [{case}] needs evidence")
            return Verdict(False, (
                f"{label}: a {mode} verdict needs a confidence interval, and none was computed "
                f"(no item was scored by both models); use point mode for it, {mode} mode "
                f"[{case}]"), mode)
        tail = f"{mode} mode [{case}]"
        if self.kind == "min":
            return self._check_min(label, edited, edited_nan, bounds, evidence, mode, tail)
        assert baseline is not None
        return self._check_drop(label, baseline, edited, edited_nan, bounds, evidence, mode, tail)

    def _check_min(self, label: str, edited: float, edited_nan: bool,
                   bounds: tuple[float, float] | None, evidence: Evidence | None, mode: Mode,
                   tail: str) -> Verdict:
        minimum = f"minimum {self.limit:.3f}"
        if edited_nan:
            return Verdict(False, f"{label} has no score (nan), {minimum}, {tail}", mode)
        stats = ""
        if bounds is not None and evidence is not None:
            stats = (f" ({_percent(evidence.confidence)} interval {bounds[0]:.3f} to "
                     f"{bounds[1]:.3f}, n={evidence.n})")
        floor = self.limit - TOLERANCE
        if mode == "point":
            passed = edited >= floor
        elif mode == "ci":  # fail only when even the interval's top is below the minimum
            assert bounds is not None
            passed = bounds[1] >= floor
        else:  # noninferiority: pass only when even the interval's bottom reaches it
            assert bounds is not None
            passed = bounds[0] >= floor
        relation = ">=" if edited >= floor else "below"
        return Verdict(passed, f"{label} {edited:.3f}{stats} {relation} {minimum}, "
                               f"{_decided(mode, passed)}{tail}", mode)

    def _check_drop(self, label: str, baseline: float, edited: float, edited_nan: bool,
                    bounds: tuple[float, float] | None, evidence: Evidence | None, mode: Mode,
                    tail: str) -> Verdict:
        limit = f"limit {_fmt_limit(self.limit, 1)} pt"
        if edited_nan:
            reason = f"{label} has no score (nan), was {baseline:.3f}, {limit}, {tail}"
            return Verdict(False, reason, mode)
        drop = 100.0 * (baseline - edited)
        scores = f"{baseline:.3f} -> {edited:.3f}"
        if bounds is not None and evidence is not None:
            scores += (f"; {_percent(evidence.confidence)} interval of the change "
                       f"{_pt(bounds[0])} to {_pt(bounds[1])} pt, n={evidence.n}")
        allowed = self.limit + 100.0 * TOLERANCE
        if mode == "point":
            passed = drop <= allowed
        elif mode == "ci" and evidence is not None and evidence.family > 0:  # --holm
            assert evidence.p_damage is not None
            bound = one_sided_alpha(evidence.confidence) / evidence.family
            passed = evidence.p_damage >= bound
            return Verdict(passed, (
                f"{label} {_change_text(drop, allowed)} ({scores}), {limit}, "
                f"{'passed' if passed else 'failed'}: p = {evidence.p_damage:.2g} that the drop "
                f"is within the limit, {'>=' if passed else '<'} {bound:.2g} (Bonferroni over "
                f"{evidence.family} ci verdicts), {tail}"), mode)
        elif mode == "ci":  # fail only when even the interval's top shows a drop past the limit
            assert bounds is not None
            passed = -100.0 * bounds[1] <= allowed
        else:  # noninferiority: pass only when even the interval's bottom is within the limit
            assert bounds is not None
            passed = -100.0 * bounds[0] <= allowed
        return Verdict(passed, f"{label} {_change_text(drop, allowed)} ({scores}), {limit}, "
                               f"{_decided(mode, passed)}{tail}", mode)


def _change_text(drop: float, allowed: float) -> str:
    return f"dropped {drop:.1f} pt" if drop > allowed else f"changed {-drop:+.1f} pt"


def _percent(confidence: float) -> str:
    return f"{100.0 * confidence:g}%"


def _decided(mode: Mode, passed: bool) -> str:
    """Why an interval verdict went the way it did, when the point estimate alone would not say."""
    if mode == "ci":
        return "passed: damage past the limit is not shown, " if passed else \
            "failed: damage past the limit is shown, "
    if mode == "noninferiority":
        return "passed: the interval is within the limit, " if passed else \
            "failed: the interval reaches past the limit, "
    return ""


Parsed = dict[tuple[Kind, str], tuple[float, Mode | None]]


@dataclasses.dataclass(frozen=True)
class _File:
    limits: Parsed
    mode: Mode | None = None
    confidence: float | None = None
    holm: bool | None = None


def _parse_entry(entry: str, key: str, kind: Kind, value: object) -> tuple[float, Mode | None]:
    mode: Mode | None = None
    if isinstance(value, dict):
        if "limit" not in value:
            inner = next(iter(value), "METRIC")
            raise ThresholdError(
                f"{entry}: a dotted key makes a table, expected a number or "
                f'{{ limit = NUMBER, mode = "ci" }}; quote the key, e.g. "{key}.{inner}" = ...'
            )
        unknown = sorted(set(value) - {"limit", "mode"})
        if unknown:
            raise ThresholdError(f"{entry}: unknown key(s) {unknown}; expected only limit and "
                                 "mode")
        if "mode" in value:
            mode = check_mode(value["mode"], entry)
        value = value["limit"]
    if _split_key(key) is None:
        raise ThresholdError(
            f'{entry}: expected a key "BENCHMARK[.METRIC]", e.g. "mmlu.acc"; fix the key'
        )
    problem = _range_problem(kind, value)
    if problem:
        raise ThresholdError(f"{entry}: {problem}; fix the value")
    assert isinstance(value, (int, float))
    return float(value), mode


def _parse_verdict(where: str, table: object) -> tuple[Mode | None, float | None, bool | None]:
    if not isinstance(table, dict):
        raise ThresholdError(f"{where}: 'verdict' = {table!r} is not a table; {_FILE_SHAPE}")
    unknown = sorted(set(table) - {"mode", "confidence", "holm"})
    if unknown:
        raise ThresholdError(f"{where}: unknown key(s) {unknown} in [verdict]; expected only "
                             "mode, confidence and holm")
    mode = check_mode(table["mode"], f"{where}: [verdict]") if "mode" in table else None
    confidence = (check_confidence(table["confidence"], f"{where}: [verdict]")
                  if "confidence" in table else None)
    holm = table.get("holm")
    if holm is not None and not isinstance(holm, bool):
        raise ThresholdError(f"{where}: [verdict] holm = {holm!r} is not true or false")
    return mode, confidence, holm


def _parse_file(path: Path) -> _File:
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
    unknown = sorted(set(data) - {"thresholds", "verdict"})
    if unknown:
        raise ThresholdError(f"{where}: unknown top-level key(s) {unknown}; {_FILE_SHAPE}")
    mode, confidence, holm = _parse_verdict(where, data.get("verdict", {}))
    tables = data.get("thresholds", {})
    if not isinstance(tables, dict):
        raise ThresholdError(f"{where}: 'thresholds' = {tables!r} is not a table; {_FILE_SHAPE}")
    unknown = sorted(set(tables) - set(KINDS))
    if unknown:
        raise ThresholdError(
            f"{where}: unknown table(s) {['thresholds.' + u for u in unknown]}; {_FILE_SHAPE}"
        )
    out: Parsed = {}
    for kind in KINDS:
        entries = tables.get(kind, {})
        if not isinstance(entries, dict):
            raise ThresholdError(
                f"{where}: thresholds.{kind} = {entries!r} is not a table; {_FILE_SHAPE}"
            )
        for key, value in entries.items():
            entry = f"{where}: [thresholds.{kind}] {key!r} = {value!r}"
            out[(kind, key.strip())] = _parse_entry(entry, key, kind, value)
    return _File(out, mode, confidence, holm)


def _parse_option(kind: Kind, text: str) -> dict[tuple[Kind, str], float]:
    """``--max-drop``/``--min-score`` text: a limit per key (the mode stays the file's or the
    run's)."""
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
    mode: Mode = DEFAULT_MODE  # of every threshold that does not set its own
    confidence: float = DEFAULT_CONFIDENCE  # of the intervals the verdicts use
    holm: bool = False  # Holm's correction over the run's ci-mode drop verdicts (--holm)
    family: int = 0  # how many ci-mode drop verdicts the run plans (set with holm)

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        check_mode(self.mode, "ThresholdSet")
        check_confidence(self.confidence, "ThresholdSet")
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
        cls, path: Path | None, max_drop: Sequence[str] = (), min_score: Sequence[str] = (),
        mode: str | None = None, confidence: float | None = None, holm: bool = False,
    ) -> ThresholdSet:
        """Read ``path`` (TOML), then let ``--max-drop``/``--min-score`` strings override its
        limits; ``mode`` (``--verdict-mode``) overrides every mode of the file, and
        ``confidence`` (``--confidence``) its confidence."""
        if isinstance(max_drop, str) or isinstance(min_score, str):
            raise TypeError("max_drop and min_score take a sequence of strings, not one string")
        parsed = _parse_file(Path(path)) if path is not None else _File({})
        limits = dict(parsed.limits)
        sources: dict[Kind, Sequence[str]] = {"max_drop": max_drop, "min": min_score}
        for kind, texts in sources.items():
            for text in texts:
                for ident, value in _parse_option(kind, text).items():
                    limits[ident] = (value, limits.get(ident, (value, None))[1])
        forced = check_mode(mode, "--verdict-mode") if mode is not None else None
        thresholds = []
        for (kind, key), (limit, own) in limits.items():
            split = _split_key(key)
            assert split is not None  # checked while parsing
            thresholds.append(Threshold(split[0], split[1], kind, limit,
                                        None if forced else own))
        return cls(tuple(thresholds), forced or parsed.mode or DEFAULT_MODE,
                   check_confidence(confidence, "--confidence") if confidence is not None
                   else parsed.confidence or DEFAULT_CONFIDENCE, holm or bool(parsed.holm))

    def lookup(self, benchmark: str, metric: str, primary: bool) -> list[Threshold]:
        """Thresholds on ``benchmark.metric``; bare-``benchmark`` ones too if it is primary."""
        explicit = [t for t in self.thresholds if t.benchmark == benchmark and t.metric == metric]
        bare: list[Threshold] = []
        if primary:
            kinds = {t.kind for t in explicit}
            bare = [t for t in self.thresholds
                    if t.benchmark == benchmark and t.metric is None and t.kind not in kinds]
        # each with its mode settled: its own, else the run's
        return [t if t.mode else dataclasses.replace(t, mode=self.mode) for t in explicit + bare]

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
        """The thresholds in the file's shape: ``{"max_drop": {key: limit}, "min": {...}}``,
        a limit with a mode of its own as ``{"limit": ..., "mode": ...}``, and the verdict
        settings."""
        out: dict[str, Any] = {kind: {} for kind in KINDS}
        for t in self.thresholds:
            out[t.kind][t.key] = t.limit if t.mode is None else {"limit": t.limit, "mode": t.mode}
        out["verdict"] = {"mode": self.mode, "confidence": self.confidence}
        if self.holm:
            out["verdict"]["holm"] = True
        return out
