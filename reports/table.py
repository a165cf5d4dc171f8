"""Degradation tables built from report rows: a long-form frame, terminal text, markdown, CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from tabulate import tabulate

from editguard import kinds
from editguard.verdicts import chance, power
from editguard.verdicts.row import Row

COLUMNS = (
    "model", "method", "n_edits", "benchmark", "metric", "kind", "baseline", "edited", "delta",
    "delta_pt", "low_pt", "high_pt", "confidence", "p_value", "threshold", "mode", "passed",
    "status", "stderr", "n_items", "message",
)  # fmt: skip
FLOAT_COLUMNS = ("baseline", "edited", "delta", "delta_pt", "low_pt", "high_pt", "confidence",
                 "p_value", "stderr")
MAX_MESSAGES = 20
BASELINE_METHOD = "baseline"

Case = tuple[str, str, int]


def _case(row: Row) -> Case:
    return (row.model, row.method, row.n_edits)


def _column(row: Row) -> str:
    return f"{row.benchmark}.{row.metric}"


def columns(rows: Sequence[Row]) -> list[str]:
    """``benchmark.metric`` names ordered by kind (efficacy, capability, safety, others), then
    by first appearance."""
    first: dict[str, tuple[int, int]] = {}
    for index, row in enumerate(rows):
        first.setdefault(_column(row), (kinds.rank(row.kind), index))
    return sorted(first, key=first.__getitem__)


def ordered(rows: Sequence[Row]) -> list[Row]:
    """Rows deduplicated by (model, method, n_edits, benchmark, metric), keeping the last one,
    sorted by model, method, n_edits, then column order."""
    position = {name: i for i, name in enumerate(columns(rows))}
    latest = {(*_case(row), row.benchmark, row.metric): row for row in rows}
    return sorted(latest.values(), key=lambda r: (*_case(r), position[_column(r)]))


def failed(row: Row) -> bool:
    return row.passed is False or row.status != "ok"


def frame(rows: Sequence[Row]) -> pd.DataFrame:
    """The long form: one line per (model, method, n_edits, benchmark, metric)."""
    records = []
    for row in ordered(rows):
        derived = ("delta_pt", "low_pt", "high_pt")
        record = {name: getattr(row, name) for name in COLUMNS if name not in derived}
        record["delta_pt"] = None if row.delta is None else 100.0 * row.delta
        low, high = row.interval or (None, None)
        record["low_pt"] = None if low is None else 100.0 * low
        record["high_pt"] = None if high is None else 100.0 * high
        records.append(record)
    out = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return out.astype({name: "float64" for name in FLOAT_COLUMNS})


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _change(row: Row) -> str | None:
    """``(-3.1 [-5.2,-1.0])``: the delta and its interval, in points."""
    if row.delta is None or not math.isfinite(row.delta):
        return None
    change = f"{100.0 * row.delta:+.1f}"
    if row.interval is None:
        return f"({change})"
    low, high = (f"{100.0 * bound:+.1f}" for bound in row.interval)
    if low == high == change:  # every resample agrees (e.g. no item changed): no interval
        return f"({change})"
    return f"({change} [{low},{high}])"


def _cell(row: Row, tag_modes: bool) -> str:
    if row.status != "ok":
        return row.status
    parts = [_score(row.edited)]
    change = _change(row)
    if change:
        parts.append(change)
    if row.passed is not None:
        verdict = "PASS" if row.passed else "FAIL"
        parts.append(f"{verdict}({row.mode})" if tag_modes and row.mode else verdict)
    return " ".join(parts)


def modes(rows: Sequence[Row]) -> list[str]:
    """The verdict modes that decided some row, in table order."""
    return list(dict.fromkeys(row.mode for row in ordered(rows) if row.mode and
                              row.passed is not None))


def _grid(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    names = columns(rows)
    index = {name: i for i, name in enumerate(names)}
    lines: dict[Case, list[str]] = {}
    baselines: dict[str, list[str]] = {}
    tag_modes = len(modes(rows)) > 1  # one mode for all: the legend under the table says it
    for row in ordered(rows):
        cells = lines.setdefault(_case(row), [""] * len(names))
        cells[index[_column(row)]] = _cell(row, tag_modes)
        base = baselines.setdefault(row.model, [""] * len(names))
        if row.baseline is not None and not base[index[_column(row)]]:
            base[index[_column(row)]] = _score(row.baseline)
    body: list[list[str]] = []
    for case, cells in lines.items():  # already in table order
        model = case[0]
        if model in baselines:
            base = baselines.pop(model)
            if any(base):  # a model evaluated without baselines gets no baseline line
                body.append([model, BASELINE_METHOD, "0", *base])
        body.append([case[0], case[1], str(case[2]), *cells])
    return ["model", "method", "n_edits", *names], body


def _table(rows: Sequence[Row], tablefmt: str) -> str:
    headers, body = _grid(rows)
    if tablefmt == "github":
        body = [[cell.replace("|", "\\|") for cell in line] for line in body]
    return str(tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True))


def summary(rows: Sequence[Row]) -> str:
    """``"9 (model, method, n_edits) lines: 7 passed, 2 failed"``: one per table line (pytest
    counts tests, one per benchmark); a line fails if any of its rows failed."""
    cases: dict[Case, bool] = {}
    for row in ordered(rows):
        cases[_case(row)] = cases.get(_case(row), False) or failed(row)
    n_failed = sum(cases.values())
    noun = "line" if len(cases) == 1 else "lines"
    return (f"{len(cases)} (model, method, n_edits) {noun}: {len(cases) - n_failed} passed, "
            f"{n_failed} failed")


def failure_messages(rows: Sequence[Row], limit: int = MAX_MESSAGES) -> list[str]:
    """One line per failed row (first line of its message), at most ``limit`` then a count."""
    out = []
    for row in filter(failed, ordered(rows)):
        text = row.message.strip().splitlines()[0] if row.message.strip() else ""
        if not text:
            outcome = "FAIL" if row.status == "ok" else row.status
            text = f"{_column(row)} {outcome} [{row.model} | {row.method} | n={row.n_edits}]"
        out.append(text)
    out = list(dict.fromkeys(out))  # one line per reason (an error fails every metric alike)
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more"]
    return out


_MODE_MEANING = {
    "point": "the point change against its limit",
    "ci": "fails only when the interval shows damage past its limit",
    "noninferiority": "passes only when the interval shows no damage past its limit",
    "ci-holm": "fails only when Holm's step-down over the run's ci verdicts shows damage past "
               "its limit",
}


def confidence(rows: Sequence[Row]) -> float | None:
    """The confidence of the rows' intervals (one per run: ``--confidence``), if any has one."""
    return next((row.confidence for row in rows if row.confidence), None)


def legend(rows: Sequence[Row]) -> str | None:
    """What the cells' numbers and verdicts mean: the interval and the deciding modes."""
    found = modes(rows)
    level = confidence(rows)
    parts = []
    if level is not None:
        parts.append(f"(change [interval]) in points, the {100 * level:g}% paired "
                     "bootstrap interval of edited - baseline")
    if len(found) == 1:
        parts.append(f"verdicts in {found[0]} mode ({_MODE_MEANING.get(found[0], found[0])})")
    elif found:
        parts.append("verdicts tagged with the mode that decided them: " + "; ".join(
            f"{mode} = {_MODE_MEANING.get(mode, mode)}" for mode in found))
    return "; ".join(parts) or None


def notes(rows: Sequence[Row]) -> list[str]:
    """The lines under the table: legend, chance failures, items needed."""
    out = []
    meaning = legend(rows)
    if meaning:
        out.append(meaning)
    expected = chance.by_chance(ordered(rows))
    if expected is not None:
        out.append(expected.describe())
    level = confidence(rows) or 0.95
    needed = power.advice(ordered(rows), level)
    if needed:
        out.append(power.describe(needed, level))
    cut: dict[str, int] = {}
    for row in rows:  # every metric row of a case carries its case's count
        if row.truncated:
            cut[row.benchmark] = max(cut.get(row.benchmark, 0), row.truncated)
    if cut:
        out.append("inputs cut from the left to fit the model (the most in one case): " +
                   ", ".join(f"{name} {count}" for name, count in sorted(cut.items())))
    return out


def render_text(rows: Sequence[Row]) -> str:
    """The terminal table, its summary line, the notes and the failure messages."""
    if not rows:
        return "no editguard rows were recorded\n" + summary(rows)
    return "\n".join([_table(rows, "simple"), "", summary(rows), *notes(rows),
                      *failure_messages(rows)])


def render_markdown(rows: Sequence[Row]) -> str:
    """The table as GitHub markdown with a title, the summary line and the notes."""
    table = _table(rows, "github") if rows else "_No editguard rows were recorded._"
    below = "".join(f"\n{line}\n" for line in notes(rows)) if rows else ""
    return f"# editguard degradation\n\n{table}\n\n{summary(rows)}\n{below}"


def render_csv(rows: Sequence[Row]) -> str:
    """The long form (see :func:`frame`) as CSV."""
    return str(frame(rows).to_csv(index=False, lineterminator="\n"))
