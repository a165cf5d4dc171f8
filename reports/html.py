"""The run as one self-contained HTML page (report.html): per model, a degradation-curve figure
per benchmark, the degradation table with verdict colours, the collapse diagnostics (relative
weight change of every edited matrix) and the provenance.

No JavaScript and no external files: figures are PNGs drawn with matplotlib's ``Figure`` (no
pyplot, no global backend) and embedded as base64 ``data:`` URIs; every text is escaped.
Figure sizes and dpi are fixed, so the same rows render the same page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from editguard.reports import table
from editguard.verdicts.row import Row

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
PANEL_SIZE = (4.4, 3.4)  # inches per metric subplot
LEGEND_HEIGHT = 1.0  # inches below the subplots for the figure legend
MAX_PANELS_PER_ROW = 3
WEIGHT_FIGURE_SIZE = (10.0, 3.8)
FONT_SIZE = 10
LOG_SPAN = 10.0  # n_edits spanning this factor or more get a log x axis
# Method colours: matplotlib's tab10 without its red, which marks failures.
METHOD_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf")  # fmt: skip
FAIL_COLOUR = "#d62728"
BASELINE_COLOUR = "#222222"
LINE_STYLES = ("-", "--", ":", "-.")
PARAM_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DODGE = 0.025  # sideways offset between methods: decades on a log axis, else of the x span
BAND_LABEL = "interval of the score"
BASELINE_LABEL = "baseline"
FAIL_REGION_LABEL = "fail region"
FAILED_LABEL = "failed verdict"
NO_SCORE_LABEL = "no score"
SHARED_LABELS = (BAND_LABEL, BASELINE_LABEL, FAIL_REGION_LABEL, FAILED_LABEL, NO_SCORE_LABEL)
CURVES_HELP = (
    "Score after n sequential edits, one line per method (points of equal score are set slightly "
    "apart); shaded bands: {confidence} interval of the edited score (baseline + paired interval of the "
    "delta); dashed: the unedited baseline; red region: scores that fail the threshold; red X: a "
    "failed verdict; triangle at the bottom: no score (collapsed or error)."
)

Box = tuple[float, float]


def _confidence(rows: Sequence[Row]) -> str:
    """``95%``: the confidence of the rows' intervals (the run's ``--confidence``)."""
    found = table.confidence(rows) or 0.95
    return f"{100 * found:g}%"

_CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 24px;
       color: #212529; max-width: 1500px; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #dee2e6; padding-bottom: 4px; }
p.summary { font-size: 1.15em; font-weight: bold; }
ul.failures li { color: #842029; font-family: monospace; }
div.figures { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: flex-start; }
figure { margin: 0 0 16px 0; max-width: 100%; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 8px 0 16px 0; font-size: 0.9em; }
th, td { border: 1px solid #ced4da; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #e9ecef; } th small { font-weight: normal; color: #555; }
td.pass { background: #d1e7dd; } td.fail { background: #f8d7da; }
td.none { background: #f1f3f5; } td.collapsed, td.error { background: #ced4da; color: #842029; }
td.baseline { background: #fff; font-style: italic; }
td .score { font-weight: bold; font-size: 1.05em; } td .verdict { font-weight: bold; }
td.pass .verdict { color: #0f5132; } td.fail .verdict { color: #842029; }
td small { color: #444; display: block; }
td.num { text-align: right; font-family: monospace; }
pre { background: #f8f9fa; border: 1px solid #dee2e6; padding: 8px; overflow-x: auto;
      font-size: 0.85em; }
dl.fields { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dl.fields dt { font-weight: bold; }
dl.fields dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; }
"""


def render_html(rows: Sequence[Row], provenance: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    ordered = table.ordered(rows)
    parts = [
        "<h1>editguard degradation report</h1>",
        f'<p class="summary">{_e(table.summary(rows))}</p>',
        _failures_html(rows),
    ]
    if not ordered:
        parts.append("<p>No editguard rows were recorded.</p>")
    for model, model_rows in _by_model(ordered).items():
        parts.append(_model_html(model, model_rows))
    parts.append(_run_provenance_html(provenance))
    return _page("editguard degradation report", "\n".join(parts))


# --- helpers on rows -------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _finite(value: float | None) -> float | None:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _by_model(rows: Iterable[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.model, []).append(row)
    return out


def _benchmarks(rows: Sequence[Row]) -> dict[str, list[str]]:
    """benchmark -> its metrics, both in table column order."""
    out: dict[str, list[str]] = {}
    for column in table.columns(rows):
        benchmark, _, metric = column.partition(".")
        out.setdefault(benchmark, []).append(metric)
    return out


def _method_colours(rows: Sequence[Row]) -> dict[str, str]:
    methods = dict.fromkeys(row.method for row in rows)
    return {m: METHOD_COLOURS[i % len(METHOD_COLOURS)] for i, m in enumerate(methods)}


def _edited(row: Row) -> float | None:
    return _finite(row.edited) if row.status == "ok" else None


def band(row: Row) -> Box | None:
    """The edited score's 95% band: baseline + the paired interval of the delta, else the
    bootstrap interval of the edited score, else None."""
    base = _finite(row.baseline)
    for interval, offset in ((row.interval, base), (row.edited_interval, 0.0)):
        if interval is None or offset is None:
            continue
        low, high = (_finite(v) for v in interval)
        if low is not None and high is not None:
            return offset + low, offset + high
    return None


def _baselines(rows: Sequence[Row]) -> dict[int, float]:
    """n_edits -> the baseline score (the first finite one; equal across methods)."""
    out: dict[int, float] = {}
    for row in rows:
        base = _finite(row.baseline)
        if base is not None:
            out.setdefault(row.n_edits, base)
    return dict(sorted(out.items()))


def _limits(rows: Sequence[Row]) -> list[tuple[str, float]]:
    """The distinct (kind, value) limits applied to these rows, e.g. ("max_drop", 5.0)."""
    found: dict[tuple[str, float], None] = {}
    for row in rows:
        for kind, value in (row.limits or {}).items():
            number = _finite(value)
            if kind in ("max_drop", "min") and number is not None:
                found[(kind, number)] = None
    return list(found)


# --- curves ----------------------------------------------------------------------------------


def _new_figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _png(figure: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI; the figure is cleared."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    figure.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _x_axis(axes: Axes, ns: Sequence[int]) -> tuple[float, float]:
    """Log scale when ``ns`` spans a decade or more; the n values as the ticks; the x limits."""
    from matplotlib.ticker import NullFormatter, NullLocator

    low, high = min(ns), max(ns)
    if low > 0 and high / low >= LOG_SPAN:
        axes.set_xscale("log")
        limits = (low / 1.4, high * 1.4)
    else:
        pad = max(0.5, 0.08 * (high - low))
        limits = (low - pad, high + pad)
    axes.set_xlim(*limits)
    axes.set_xticks(list(ns), labels=[str(n) for n in ns])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("number of edits (n_edits)")
    return limits


def _y_limits(values: Iterable[float]) -> Box:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    low, high = min(finite), max(finite)
    pad = 0.12 * max(high - low, 0.05)
    low, high = low - pad, high + pad
    if all(0.0 <= v <= 1.0 for v in finite):
        low, high = max(low, -0.04), min(high, 1.04)
    return low, high


def _stretch(xlim: Box, points: Mapping[int, float]) -> tuple[list[float], list[float]]:
    """``points`` (n -> y) extended flat to both x limits, for lines and regions over the axes."""
    ns = list(points)
    xs = [xlim[0], *map(float, ns), xlim[1]]
    ys = [points[ns[0]], *points.values(), points[ns[-1]]]
    return xs, ys


def _draw_baseline(axes: Axes, baselines: Mapping[int, float], xlim: Box) -> None:
    if baselines:
        xs, ys = _stretch(xlim, baselines)
        axes.plot(xs, ys, linestyle="--", color=BASELINE_COLOUR, linewidth=1.4,
                  label=BASELINE_LABEL, zorder=2)


def _draw_thresholds(axes: Axes, rows: Sequence[Row], baselines: Mapping[int, float], xlim: Box,
                     ylim: Box) -> None:
    """The failing region of every limit: below ``min``, or more than ``max_drop`` points under
    the baseline."""
    for kind, value in _limits(rows):
        if kind == "min":
            xs, ys = [xlim[0], xlim[1]], [value, value]
        elif baselines:
            xs, ys = _stretch(xlim, {n: b - value / 100.0 for n, b in baselines.items()})
        else:
            continue
        axes.fill_between(xs, [ylim[0]] * len(xs), ys, color=FAIL_COLOUR, alpha=0.13,
                          linewidth=0, label=FAIL_REGION_LABEL, zorder=1)
        axes.plot(xs, ys, color=FAIL_COLOUR, linewidth=1.0, alpha=0.8, zorder=1)


def _dodged(axes: Axes, ns: Sequence[int], offset: float) -> list[float]:
    """``ns`` moved ``offset`` steps sideways, so that methods with equal scores stay visible."""
    if axes.get_xscale() == "log":
        return [n * 10.0 ** (offset * DODGE) for n in ns]
    low, high = axes.get_xlim()
    return [n + offset * DODGE * (high - low) for n in ns]


def _draw_method(axes: Axes, rows: Sequence[Row], colour: str, offset: float) -> None:
    scored = [(r, e) for r in rows if (e := _edited(r)) is not None]
    xs = _dodged(axes, [r.n_edits for r, _ in scored], offset)
    if scored:
        axes.plot(xs, [e for _, e in scored], color=colour, marker="o", markersize=6,
                  linewidth=2, label=rows[0].method, zorder=4)
    banded = [(r.n_edits, b) for r in rows if (b := band(r)) is not None]
    band_xs = _dodged(axes, [n for n, _ in banded], offset)
    if len(banded) == 1:  # a band needs two points: one n gets an interval bar instead
        axes.vlines(band_xs, [banded[0][1][0]], [banded[0][1][1]], color=colour, alpha=0.35,
                    linewidth=7, label=BAND_LABEL, zorder=3)
    elif banded:
        axes.fill_between(band_xs, [b[0] for _, b in banded], [b[1] for _, b in banded],
                          color=colour, alpha=0.18, linewidth=0, label=BAND_LABEL, zorder=3)
    failed = [(x, e) for x, (r, e) in zip(xs, scored) if r.passed is False]
    if failed:
        axes.plot([x for x, _ in failed], [e for _, e in failed], linestyle="none", marker="X",
                  markersize=13, color=FAIL_COLOUR, markeredgecolor="white",
                  markeredgewidth=1.0, label=FAILED_LABEL, zorder=6)
    lost = _dodged(axes, [r.n_edits for r in rows if _edited(r) is None], offset)
    if lost:  # no score: a marker at the bottom of the axes, in the method's colour
        axes.plot(lost, [0.04] * len(lost), transform=axes.get_xaxis_transform(),
                  linestyle="none", marker="v", markersize=11, color=colour,
                  markeredgecolor=FAIL_COLOUR, markeredgewidth=2, clip_on=False,
                  label=NO_SCORE_LABEL, zorder=6)


def _y_values(rows: Sequence[Row], baselines: Mapping[int, float]) -> list[float]:
    values = [e for r in rows if (e := _edited(r)) is not None]
    values += [v for r in rows if (b := band(r)) is not None for v in b]
    values += list(baselines.values())
    for kind, value in _limits(rows):
        if kind == "min":
            values.append(value)
        else:
            values += [b - value / 100.0 for b in baselines.values()]
    return values


def _title(rows: Sequence[Row], metric: str, baselines: Mapping[int, float]) -> str:
    """The metric, then its baseline, limits and mode; then the rows that have no score."""
    facts = []
    values = set(baselines.values())
    if len(values) == 1:
        facts.append(f"baseline {values.pop():.3f}")
    elif values:
        facts.append("baseline per n (edit set)")
    for kind, value in _limits(rows):
        facts.append(f"fail: < {value:.2f}" if kind == "min" else f"fail: drop > {value:g} pt")
    if not _limits(rows):
        facts += list(dict.fromkeys(r.threshold for r in rows if r.threshold)) or ["no threshold"]
    modes = dict.fromkeys(r.mode for r in rows if r.mode)
    if modes:
        facts.append(f"{'/'.join(modes)} mode")
    title = f"{metric}\n{' · '.join(facts)}"
    lost = [f"{r.method} n={r.n_edits} {'nan' if r.status == 'ok' else r.status}"
            for r in rows if _edited(r) is None]
    if lost:
        title += "\nno score: " + ", ".join(lost[:2]) + (" ..." if len(lost) > 2 else "")
    return title


def _draw_metric(axes: Axes, rows: Sequence[Row], benchmark: str, metric: str,
                 colours: Mapping[str, str]) -> None:
    metric_rows = [r for r in rows if r.benchmark == benchmark and r.metric == metric]
    xlim = _x_axis(axes, sorted({r.n_edits for r in metric_rows}))
    baselines = _baselines(metric_rows)
    ylim = _y_limits(_y_values(metric_rows, baselines))
    axes.set_ylim(*ylim)
    _draw_thresholds(axes, metric_rows, baselines, xlim, ylim)
    _draw_baseline(axes, baselines, xlim)
    methods = _by_method(metric_rows)
    for index, (method, method_rows) in enumerate(methods.items()):
        _draw_method(axes, method_rows, colours[method], index - (len(methods) - 1) / 2)
    axes.set_xlim(*xlim)
    axes.set_ylim(*ylim)
    axes.set_ylabel(f"{metric} score")
    axes.set_title(_title(metric_rows, metric, baselines), fontsize=FONT_SIZE)
    axes.grid(True, alpha=0.3)


def _by_method(rows: Iterable[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.method, []).append(row)
    return out


def _proxies() -> dict[str, Any]:
    """Method-neutral legend handles for the entries every method shares."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return {
        BAND_LABEL: Patch(facecolor="#888888", alpha=0.3),
        NO_SCORE_LABEL: Line2D([], [], linestyle="none", marker="v", markersize=10,
                               color="#888888", markeredgecolor=FAIL_COLOUR, markeredgewidth=2),
    }


def _figure_legend(figure: Figure, ncols: int) -> None:
    """One legend for all subplots, below them: the methods, then the shared entries."""
    proxies = _proxies()
    found: dict[str, Any] = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            found.setdefault(label, proxies.get(label, handle))
    order = [label for label in found if label not in SHARED_LABELS]
    order += [label for label in SHARED_LABELS if label in found]
    seen = {label: found[label] for label in order}
    if seen:
        figure.legend(list(seen.values()), list(seen), loc="outside lower center",
                      ncols=min(ncols, len(seen)), fontsize=FONT_SIZE - 1, frameon=False)


def curve_figure(rows: Sequence[Row], benchmark: str, colours: Mapping[str, str]) -> str:
    """The degradation curves of one model's ``benchmark``, one subplot per metric, as a PNG
    data URI."""
    from matplotlib import rc_context

    metrics = _benchmarks(rows)[benchmark]
    ncols = min(len(metrics), MAX_PANELS_PER_ROW)
    nrows = math.ceil(len(metrics) / ncols)
    size = (PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + LEGEND_HEIGHT)
    with rc_context({"font.size": FONT_SIZE}):
        figure = _new_figure(size)
        grid = figure.subplots(nrows, ncols, squeeze=False)
        for index, axes in enumerate(grid.flat):
            if index < len(metrics):
                _draw_metric(axes, rows, benchmark, metrics[index], colours)
            else:
                axes.set_visible(False)
        figure.suptitle(f"{rows[0].model}: {benchmark}", fontsize=FONT_SIZE + 3,
                        fontweight="bold")
        _figure_legend(figure, 3 * ncols)
        return _png(figure)


# --- collapse diagnostics --------------------------------------------------------------------


def relative_weight_changes(rows: Iterable[Row]) -> dict[str, dict[str, dict[int, float]]]:
    """method -> parameter -> n_edits -> ||dW||_F / ||W||_F, from the rows' provenance
    (``editor.weight_change``; one case's rows all carry the same)."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for row in rows:
        editor = row.provenance.get("editor") if isinstance(row.provenance, dict) else None
        changes = editor.get("weight_change") if isinstance(editor, dict) else None
        if not isinstance(changes, dict):
            continue
        for name, stats in changes.items():
            ratio = _ratio(stats)
            if ratio is not None:
                per_n = out.setdefault(row.method, {}).setdefault(str(name), {})
                per_n.setdefault(row.n_edits, ratio)
    return {m: {p: dict(sorted(v.items())) for p, v in params.items()}
            for m, params in out.items()}


def _ratio(stats: object) -> float | None:
    if not isinstance(stats, dict):
        return None
    delta, weight = _finite(stats.get("delta_fro")), _finite(stats.get("weight_fro"))
    if delta is None or weight is None or weight == 0:
        return None
    return delta / weight


def _short(name: str) -> str:
    return name.removeprefix("model.").removesuffix(".weight")


def weight_figure(changes: Mapping[str, Mapping[str, Mapping[int, float]]],
                  colours: Mapping[str, str]) -> str:
    """x n_edits, y relative weight change, one line per (method, parameter), as a PNG URI."""
    from matplotlib import rc_context
    from matplotlib.ticker import PercentFormatter

    with rc_context({"font.size": FONT_SIZE}):
        figure = _new_figure(WEIGHT_FIGURE_SIZE)
        axes = figure.subplots()
        ns = sorted({n for params in changes.values() for per_n in params.values() for n in per_n})
        _x_axis(axes, ns)
        values = [v for params in changes.values() for per_n in params.values()
                  for v in per_n.values()]
        for method, params in changes.items():
            for index, (name, per_n) in enumerate(params.items()):
                axes.plot(list(per_n), list(per_n.values()), color=colours.get(method, "k"),
                          linestyle=LINE_STYLES[index % len(LINE_STYLES)],
                          marker=PARAM_MARKERS[index % len(PARAM_MARKERS)], linewidth=1.8,
                          label=f"{method}: {_short(name)}")
        positive = [v for v in values if v > 0]
        if positive and len(positive) == len(values) and max(values) / min(values) >= LOG_SPAN:
            axes.set_yscale("log")
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
        axes.set_ylabel(r"$\|\Delta W\|_F\ /\ \|W\|_F$")
        axes.set_title("relative weight change of each edited matrix", fontsize=FONT_SIZE + 1)
        axes.grid(True, alpha=0.3, which="both")
        figure.legend(loc="outside right upper", fontsize=FONT_SIZE - 1, frameon=False)
        return _png(figure)


def _weight_table(changes: Mapping[str, Mapping[str, Mapping[int, float]]]) -> str:
    ns = sorted({n for params in changes.values() for per_n in params.values() for n in per_n})
    head = "".join(f"<th>n={n}</th>" for n in ns)
    body = []
    for method, params in changes.items():
        for name, per_n in params.items():
            cells = "".join(
                f'<td class="num">{per_n[n] * 100:.3g}%</td>' if n in per_n else "<td></td>"
                for n in ns
            )
            body.append(f"<tr><td>{_e(method)}</td><td><code>{_e(name)}</code></td>{cells}</tr>")
    return (f'<table class="weight-change"><tr><th>method</th><th>parameter</th>{head}</tr>'
            + "".join(body) + "</table>")


def _diagnostics_html(rows: Sequence[Row], colours: Mapping[str, str]) -> str:
    changes = relative_weight_changes(rows)
    if not changes:
        return ("<h3>Collapse diagnostics</h3><p>No weight-change statistics in these rows' "
                "provenance (<code>editor.weight_change</code>).</p>")
    uri = weight_figure(changes, colours)
    alt = f"relative weight change per edited matrix of {rows[0].model}"
    return ("<h3>Collapse diagnostics</h3>"
            "<p>Relative change ||ΔW||<sub>F</sub> / ||W||<sub>F</sub> of every edited matrix at "
            "each checkpoint; a matrix that drifts far from its original is where a collapse "
            "starts.</p>"
            f'<figure><img class="weight-change" data-model="{_e(rows[0].model)}" '
            f'alt="{_e(alt)}" src="{uri}"></figure>' + _weight_table(changes))


# --- the table -------------------------------------------------------------------------------


def _verdict_class(row: Row) -> str:
    if row.status != "ok":
        return row.status if row.status in ("collapsed", "error") else "error"
    if row.passed is None:
        return "none"
    return "pass" if row.passed else "fail"


def _pt(value: float) -> str:
    return f"{100.0 * value:+.1f}"


def _cell_html(row: Row) -> str:
    kind = _verdict_class(row)
    title = f' title="{_e(row.message)}"' if row.message else ""
    if kind in ("collapsed", "error"):
        return f'<td class="{kind}"{title}><span class="verdict">{kind.upper()}</span></td>'
    edited = _finite(row.edited)
    lines = [f'<span class="score">{"n/a" if edited is None else f"{edited:.3f}"}</span>']
    delta = _finite(row.delta)
    if delta is not None:
        lines.append(f"<small>Δ {_pt(delta)} pt</small>")
    if row.interval is not None and all(_finite(v) is not None for v in row.interval):
        confidence = f"{row.confidence:.0%} " if _finite(row.confidence) is not None else ""
        lines.append(f"<small>{confidence}CI [{_pt(row.interval[0])}, {_pt(row.interval[1])}] "
                     "pt</small>")
    verdict = {"pass": "PASS", "fail": "FAIL", "none": "no threshold"}[kind]
    mode = f" · {_e(row.mode)}" if row.mode else ""
    lines.append(f'<small><span class="verdict">{verdict}</span>{mode}</small>')
    return f'<td class="{kind}"{title}>{"".join(lines)}</td>'


def _baseline_cell(rows: Sequence[Row]) -> str:
    values = sorted(set(_baselines(rows).values()))
    if not values:
        return '<td class="baseline"></td>'
    if len(values) == 1:
        return f'<td class="baseline">{values[0]:.3f}</td>'
    return f'<td class="baseline">{values[0]:.3f}–{values[-1]:.3f}<small>per n</small></td>'


def _table_html(rows: Sequence[Row]) -> str:
    """One line per (method, n_edits) in table order, one column per benchmark.metric."""
    names = table.columns(rows)
    head = []
    for name in names:
        texts = dict.fromkeys(r.threshold for r in rows if f"{r.benchmark}.{r.metric}" == name
                              and r.threshold)
        limit = f"<br><small>{_e('; '.join(texts))}</small>" if texts else ""
        head.append(f"<th>{_e(name)}{limit}</th>")
    cells: dict[tuple[str, int], dict[str, Row]] = {}
    for row in rows:  # already table.ordered
        cells.setdefault((row.method, row.n_edits), {})[f"{row.benchmark}.{row.metric}"] = row
    lines = ["<tr><td>baseline</td><td>0</td>" + "".join(
        _baseline_cell([r for r in rows if f"{r.benchmark}.{r.metric}" == n]) for n in names)
        + "</tr>"]
    for (method, n), by_name in cells.items():
        body = "".join(_cell_html(by_name[c]) if c in by_name else "<td></td>" for c in names)
        lines.append(f"<tr><td>{_e(method)}</td><td>{n}</td>{body}</tr>")
    return ('<table class="degradation"><tr><th>method</th><th>n_edits</th>' + "".join(head)
            + "</tr>" + "".join(lines) + "</table>")


# --- provenance and page ---------------------------------------------------------------------


def _json(value: object) -> str:
    return json.dumps(value, indent=2, default=str, allow_nan=True)


def _compact(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, allow_nan=True)


def _fields(values: Mapping[str, object], css: str = "fields") -> str:
    """A definition list, one ``key: value`` a line; values other than strings as JSON."""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_compact(v))}</dd>" for k, v in values.items())
    return f'<dl class="{css}">{items}</dl>'


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _timings(provenance: Mapping[str, Any]) -> str:
    timings = _mapping(provenance.get("timings"))
    parts = [f"{k.removesuffix('_s')} {v:g} s" for k, v in timings.items()
             if isinstance(v, (int, float))]
    return f" ({', '.join(parts)})" if parts else ""


def _method_provenance_html(method: str, rows: Sequence[Row]) -> str:
    spec = _mapping(_mapping(rows[0].provenance).get("method"))
    algorithm = _mapping(spec.get("details")).get("algorithm")
    name = _mapping(algorithm).get("method", algorithm if isinstance(algorithm, str) else None)
    parts = [f"<h4>{_e(method)}{f' ({_e(name)})' if name else ''}: configuration</h4>",
             _fields(_mapping(spec.get("config")), "fields method-config")]
    if _mapping(algorithm):
        parts.append(f"<details><summary>algorithm of {_e(method)}</summary>"
                     f"{_fields(_mapping(algorithm))}</details>")
    for n, row in {r.n_edits: r for r in rows}.items():
        parts.append(f"<details><summary>full provenance of {_e(method)} n={n}"
                     f"{_e(_timings(_mapping(row.provenance)))}</summary>"
                     f"<pre>{_e(_json(row.provenance))}</pre></details>")
    return "".join(parts)


def _model_provenance_html(rows: Sequence[Row]) -> str:
    """The model's fingerprint, dtype and device, then each method's configuration."""
    model = _mapping(_mapping(rows[0].provenance).get("model"))
    keys = ("source", "fingerprint", "dtype", "device", "path")
    parts = ["<h3>Provenance</h3>",
             _fields({k: model[k] for k in keys if k in model} or {"model": rows[0].model},
                     "fields model-provenance")]
    for method, method_rows in _by_method(rows).items():
        parts.append(_method_provenance_html(method, method_rows))
    return "".join(parts)


def _run_provenance_html(provenance: Mapping[str, Any]) -> str:
    """The run-wide provenance (matrix, versions, anything else) as key: value lists."""
    parts = ["<h2>Run provenance</h2>"]
    for key in ("matrix", "versions"):
        if key in provenance:
            parts.append(f"<h3>{_e(key)}</h3>"
                         + _fields(_mapping(provenance[key]) or {key: provenance[key]}))
    rest = {k: v for k, v in provenance.items() if k not in ("matrix", "versions")}
    if rest:
        parts.append("<h3>other</h3>" + _fields(rest))
    parts.append(f"<details><summary>as JSON</summary><pre class=\"provenance\">"
                 f"{_e(_json(dict(provenance)))}</pre></details>")
    return '<section class="run-provenance">' + "".join(parts) + "</section>"


def _failures_html(rows: Sequence[Row]) -> str:
    messages = table.failure_messages(rows)
    if not messages:
        return ""
    items = "".join(f"<li>{_e(m)}</li>" for m in messages)
    return f'<ul class="failures">{items}</ul>'


def _model_html(model: str, rows: Sequence[Row]) -> str:
    colours = _method_colours(rows)
    parts = [f'<section class="model" data-model="{_e(model)}">', f"<h2>{_e(model)}</h2>",
             "<h3>Degradation curves</h3>", f"<p>{_e(CURVES_HELP.format(confidence=_confidence(rows)))}</p>", '<div class="figures">']
    for benchmark in _benchmarks(rows):
        uri = curve_figure(rows, benchmark, colours)
        alt = f"degradation curves of {model} on {benchmark}"
        parts.append(f'<figure><img class="curve" data-model="{_e(model)}" '
                     f'data-benchmark="{_e(benchmark)}" alt="{_e(alt)}" src="{uri}"></figure>')
    parts.append("</div>")
    parts += ["<h3>Degradation table</h3>", _table_html(rows),
              _diagnostics_html(rows, colours), _model_provenance_html(rows), "</section>"]
    return "\n".join(parts)


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
            "</body>\n</html>\n")
