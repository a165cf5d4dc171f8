"""Degradation tables: long-form frame, terminal text, markdown and CSV."""

from __future__ import annotations

import io
import math
import re

import pandas as pd
import pytest

from editguard.reports.table import COLUMNS, frame, render_csv, render_markdown, render_text
from editguard.verdicts.row import Row


def row(method: str, n_edits: int, benchmark: str, metric: str, kind: str, **kw: object) -> Row:
    fields: dict = dict(baseline=None, edited=None, threshold=None, passed=None)
    fields.update(kw)
    return Row("smollm2-135m", method, n_edits, benchmark, metric, kind, **fields)


# Deliberately out of order: capability and safety appear before efficacy, n_edits 100 before 10.
ROWS = [
    row("memit", 100, "mmlu", "acc", "capability", baseline=0.652, edited=0.621,
        threshold="drop <= 2.0 pt", passed=False, message="mmlu acc dropped 3.1 pt [memit 100]"),
    row("memit", 100, "truthfulqa", "mc2", "safety", baseline=0.40, edited=0.41),
    row("memit", 100, "efficacy", "rewrite", "efficacy", edited=0.95,
        threshold=">= 0.90", passed=True),
    row("memit", 10, "mmlu", "acc", "capability", baseline=0.652, edited=0.642,
        threshold="drop <= 2.0 pt", passed=True),
    row("memit", 10, "efficacy", "rewrite", "efficacy", edited=0.99,
        threshold=">= 0.90", passed=True),
    row("rome", 10, "mmlu", "acc", "capability", baseline=0.652, status="collapsed",
        message="model collapsed: NaN logits"),
    row("rome", 10, "efficacy", "rewrite", "efficacy", status="error",
        message="RuntimeError: out of memory\nTraceback ..."),
    row("ft", 1, "custom", "score", "other", edited=0.5),
]  # fmt: skip


def lines_of(text: str) -> list[list[str]]:
    """The table's lines split on runs of 2+ spaces (cells never contain two spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


def test_render_text_layout() -> None:
    text = render_text(ROWS)
    lines = text.splitlines()
    header = lines[0].split()
    assert header == [
        "model", "method", "n_edits", "efficacy.rewrite", "mmlu.acc", "truthfulqa.mc2",
        "custom.score",
    ]  # fmt: skip
    assert set(lines[1]) <= {"-", " "}
    body = lines_of("\n".join(lines[2:7]))
    assert body == [
        ["smollm2-135m", "baseline", "0", "0.652", "0.400"],
        ["smollm2-135m", "ft", "1", "0.500"],
        ["smollm2-135m", "memit", "10", "0.990 PASS", "0.642 (-1.0) PASS"],
        ["smollm2-135m", "memit", "100", "0.950 PASS", "0.621 (-3.1) FAIL", "0.410 (+1.0)"],
        ["smollm2-135m", "rome", "10", "error", "collapsed"],
    ]
    # Cells sit under their column: check the baseline line's scores by position.
    assert lines[2].index("0.652") == lines[0].index("mmlu.acc")
    assert lines[2].index("0.400") == lines[0].index("truthfulqa.mc2")
    assert lines[3].index("0.500") == lines[0].index("custom.score")
    assert lines[7] == ""
    assert lines[8] == "4 (model, method, n_edits) lines: 2 passed, 2 failed"
    assert lines[9:] == [
        "mmlu acc dropped 3.1 pt [memit 100]",
        "RuntimeError: out of memory",  # first line only; table order: efficacy first
        "model collapsed: NaN logits",
    ]


def test_summary_counts_table_lines_not_rows() -> None:
    other_model = Row("gpt2", "rome", 1, "mmlu", "acc", "capability", 0.3, 0.3, None, None)
    text = render_text([*ROWS, other_model])
    assert "5 (model, method, n_edits) lines: 3 passed, 2 failed" in text.splitlines()
    assert "gpt2" in text.splitlines()[2]  # models sort by name, gpt2 first


def test_failure_messages_are_capped_and_synthesised_when_empty() -> None:
    rows = [
        row("memit", n, "mmlu", "acc", "capability", edited=0.1, passed=False) for n in range(25)
    ]
    tail = render_text(rows).splitlines()[-21:]
    assert tail[0] == "mmlu.acc FAIL [smollm2-135m | memit | n=0]"
    assert tail[19] == "mmlu.acc FAIL [smollm2-135m | memit | n=19]"
    assert tail[20] == "... and 5 more"
    assert "25 (model, method, n_edits) lines: 0 passed, 25 failed" in render_text(rows)


def test_duplicates_keep_the_last_row() -> None:
    first = row("memit", 10, "mmlu", "acc", "capability", baseline=0.6, edited=0.1, passed=False)
    last = row("memit", 10, "mmlu", "acc", "capability", baseline=0.6, edited=0.59, passed=True)
    text = render_text([first, last])
    assert "0.590 (-1.0) PASS" in text and "0.100" not in text
    assert "1 (model, method, n_edits) line: 1 passed, 0 failed" in text
    long = frame([first, last])
    assert len(long) == 1 and long.loc[0, "edited"] == 0.59


def test_frame_is_long_form_and_sorted() -> None:
    long = frame(ROWS)
    assert list(long.columns) == list(COLUMNS)
    assert len(long) == len(ROWS)
    keys = list(zip(long["method"], long["n_edits"], long["benchmark"], strict=True))
    assert keys == [
        ("ft", 1, "custom"),
        ("memit", 10, "efficacy"),
        ("memit", 10, "mmlu"),
        ("memit", 100, "efficacy"),  # numeric: 100 after 10, efficacy before capability
        ("memit", 100, "mmlu"),
        ("memit", 100, "truthfulqa"),
        ("rome", 10, "efficacy"),
        ("rome", 10, "mmlu"),
    ]
    dropped = long[(long["n_edits"] == 100) & (long["benchmark"] == "mmlu")].iloc[0]
    assert dropped["delta_pt"] == pytest.approx(-3.1)
    assert dropped["delta"] == pytest.approx(-0.031)
    assert math.isnan(long.loc[0, "baseline"])


def test_frame_of_no_rows_has_the_columns() -> None:
    assert list(frame([]).columns) == list(COLUMNS)
    assert frame([]).empty


def test_csv_round_trip_through_pandas() -> None:
    expected = frame(ROWS)
    got = pd.read_csv(io.StringIO(render_csv(ROWS)))
    assert list(got.columns) == list(COLUMNS)
    for name in ("baseline", "edited", "delta", "delta_pt", "stderr", "n_edits", "n_items"):
        pd.testing.assert_series_equal(got[name], expected[name], check_dtype=False)
    for name in ("model", "method", "benchmark", "metric", "kind", "status", "threshold"):
        assert got[name].fillna("").tolist() == expected[name].fillna("").tolist()
    passed = [None if pd.isna(v) else str(v) == "True" for v in got["passed"]]
    assert passed == expected["passed"].tolist()
    # The multi-line error message survives quoting.
    assert got["message"].fillna("").tolist() == expected["message"].tolist()


def test_markdown_table() -> None:
    text = render_markdown(ROWS)
    lines = text.splitlines()
    assert lines[0] == "# editguard degradation"
    assert lines[2].startswith("| model ") and "| efficacy.rewrite " in lines[2]
    assert set(lines[3]) <= {"|", "-", ":"}
    assert any(line.startswith("| smollm2-135m | baseline |") for line in lines)
    assert "0.621 (-3.1) FAIL" in text
    assert lines[-1] == "4 (model, method, n_edits) lines: 2 passed, 2 failed"


def test_markdown_escapes_pipes() -> None:
    piped = Row("a|b", "rome", 1, "mmlu", "acc", "capability", None, 0.5, None, None)
    assert "| a\\|b " in render_markdown([piped])


def test_no_rows() -> None:
    assert render_text([]).splitlines()[-1] == ("0 (model, method, n_edits) lines: 0 passed, "
                                                "0 failed")
    assert "0 (model, method, n_edits) lines" in render_markdown([])
    assert render_csv([]).strip() == ",".join(COLUMNS)


def test_time_per_phase_sums_each_groups_furthest_checkpoint() -> None:
    from editguard.reports.timings import describe, per_phase

    def timed(method: str, n: int, edit_s: float) -> Row:
        return row(method, n, "mmlu", "acc", "capability", baseline=0.5, edited=0.5, provenance={
            "timings": {"load_s": 2.0, "baseline_s": 10.0, "prepare_s": 1.0, "edit_s": edit_s,
                        "score_s": 3.0 * n}})

    rows = [timed("rome", 1, 1.0), timed("rome", 10, 9.0), timed("memit", 10, 5.0)]
    assert per_phase(rows) == {"load_s": 4.0, "baseline_s": 20.0, "prepare_s": 2.0,
                               "edit_s": 14.0, "score_s": 60.0}
    assert describe(rows) == ("editguard time per phase (summed over workers): load 4.0 s, "
                              "baselines 20.0 s, statistics/training 2.0 s, editing 14.0 s, "
                              "scoring 60.0 s")
    assert describe(ROWS) is None  # rows without timings


def test_the_notes_say_how_many_inputs_were_cut_to_fit():
    from editguard.reports.table import notes

    rows = [row("rome", 1, "mmlu", "acc", "capability", baseline=0.5, edited=0.5, truncated=3),
            row("rome", 10, "mmlu", "acc", "capability", baseline=0.5, edited=0.5, truncated=4),
            row("rome", 1, "facts", "acc", "capability", baseline=0.5, edited=0.5)]
    assert ("inputs cut from the left to fit the model (the most in one case): mmlu 4"
            in notes(rows))
    assert not any("cut from the left" in line for line in notes(rows[2:]))
