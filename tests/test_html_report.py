"""report.html: one self-contained page with curves, the table, diagnostics and provenance."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from editguard.reports import storage
from editguard.reports.html import band, relative_weight_changes, render_html
from editguard.verdicts.row import Row

ROOT = Path(__file__).resolve().parents[1]
FINGERPRINT = "f1e2d3c4b5a6"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip
PROVENANCE = {
    "matrix": {"methods": ["memit", "rome"], "n_edits": [1, 10, 100], "seed": 0},
    "versions": {"editguard": "0.1.0", "torch": "2.13.0+cpu"},
}


def provenance(method: str, n_edits: int) -> dict:
    scale = {"rome": 0.02, "memit": 0.005}[method] * n_edits
    layers = [5] if method == "rome" else [4, 5]
    return {
        "model": {"source": "tiny", "fingerprint": FINGERPRINT, "dtype": "float32",
                  "device": "cpu"},
        "method": {"spec": method, "config": {"layer_set": layers, "v_lr": 0.5}},
        "editor": {"weight_change": {
            f"model.layers.{layer}.mlp.down_proj.weight": {"delta_fro": scale * 10.0,
                                                           "weight_fro": 10.0}
            for layer in layers
        }},
        "timings": {"edit_s": 1.5, "score_s": 2.0},
    }  # fmt: skip


def row(method: str, n_edits: int, benchmark: str, metric: str, edited: float | None,
        **kw: object) -> Row:
    kind = "efficacy" if benchmark == "efficacy" else "capability"
    fields: dict = dict(baseline=0.60, threshold="drop <= 5.0 pt", passed=True,
                        limits={"max_drop": 5.0}, modes={"max_drop": "point"})
    if "provenance" not in kw:
        fields["provenance"] = provenance(method, n_edits)
    if edited is not None and math.isfinite(edited):
        fields["interval"] = (edited - 0.60 - 0.03, edited - 0.60 + 0.03)
        fields["confidence"] = 0.95
    fields.update(kw)
    return Row("tiny", method, n_edits, benchmark, metric, kind, edited=edited, **fields)


def efficacy(method: str, n_edits: int, rewrite: float) -> Row:
    return row(method, n_edits, "efficacy", "rewrite", rewrite, baseline=0.1, threshold=">= 0.90",
               limits={"min": 0.9}, modes={"min": "point"}, interval=None, edited_interval=(rewrite - 0.05, rewrite),
               passed=rewrite >= 0.9)


ROWS = [
    efficacy("rome", 1, 1.0), efficacy("rome", 10, 0.95), efficacy("rome", 100, 0.85),
    efficacy("memit", 1, 1.0), efficacy("memit", 10, 1.0), efficacy("memit", 100, 0.97),
    row("rome", 1, "mmlu", "acc", 0.60), row("rome", 10, "mmlu", "acc", 0.58),
    row("rome", 100, "mmlu", "acc", 0.50, passed=False,
        message="mmlu acc dropped 10.0 pt (0.600 -> 0.500), limit 5.0 pt [tiny | rome | n=100]"),
    row("memit", 1, "mmlu", "acc", 0.61), row("memit", 10, "mmlu", "acc", 0.59, interval=None),
    row("memit", 100, "mmlu", "acc", None, status="collapsed", passed=False,
        message="model collapsed: NaN logits"),
    row("memit", 100, "facts", "acc", float("nan"), passed=None, threshold=None, limits={},
        modes={}),
    row("rome", 100, "facts", "acc", 0.7, passed=None, threshold=None, limits={}, modes={}),
]  # fmt: skip


class Balance(HTMLParser):
    """Every non-void tag closed in order; counts of tags and the attributes of every img."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}
        self.images: list[dict[str, str | None]] = []
        self.classes: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        values = dict(attrs)
        self.classes += (values.get("class") or "").split()
        if tag == "img":
            self.images.append(values)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def parse(document: str) -> Balance:
    parser = Balance()
    parser.feed(document)
    parser.close()
    assert not parser.problems and not parser.stack, (parser.problems, parser.stack)
    return parser


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The report directory of ROWS, written once by ``write_report``, and its paths."""
    directory = tmp_path_factory.mktemp("report")
    return directory, storage.write_report(directory, ROWS, PROVENANCE)


@pytest.fixture(scope="module")
def document(written: tuple[Path, list[Path]]) -> str:
    return (written[0] / storage.HTML).read_text(encoding="utf-8")


def test_write_report_writes_report_html(written: tuple[Path, list[Path]]) -> None:
    directory, paths = written
    assert storage.HTML == "report.html" and directory / "report.html" in paths
    text = (directory / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text == render_html(ROWS, PROVENANCE)  # deterministic: same rows, same page


def test_one_self_contained_document(document: str) -> None:
    parsed = parse(document)
    assert parsed.doctype.lower() == "doctype html"
    assert [parsed.counts[t] for t in ("html", "head", "body", "title")] == [1, 1, 1, 1]
    assert "script" not in parsed.counts and "link" not in parsed.counts
    for image in parsed.images:
        src = image["src"] or ""
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.get("alt")
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", document)


def test_one_curve_figure_per_benchmark(document: str) -> None:
    curves = [image for image in parse(document).images if image.get("class") == "curve"]
    assert [(i["data-model"], i["data-benchmark"]) for i in curves] == [
        ("tiny", "efficacy"), ("tiny", "mmlu"), ("tiny", "facts")
    ]  # table column order: efficacy first, then capability benchmarks by first appearance


def test_table_has_verdict_classes_scores_points_and_modes(document: str) -> None:
    table = document[document.index('<table class="degradation">'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r'<td class="(pass|fail|none|collapsed|error)"', table)
    assert cells.count("fail") == 2  # rome n=100 mmlu, rome n=100 efficacy.rewrite (0.85)
    assert cells.count("collapsed") == 1 and cells.count("none") == 2
    assert cells.count("pass") == len(ROWS) - 5
    assert "0.500" in table and "Δ -10.0 pt" in table
    assert "95% CI [-13.0, -7.0] pt" in table  # the paired interval, in points
    assert "FAIL</span> · point" in table and "PASS</span> · point" in table
    assert "drop &lt;= 5.0 pt" in table and "&gt;= 0.90" in table  # escaped thresholds
    assert 'title="model collapsed: NaN logits"' in table


def test_summary_failures_and_provenance(document: str) -> None:
    top = document[:document.index("<h2>")]
    assert "6 (model, method, n_edits) lines: 4 passed, 2 failed" in top
    assert "mmlu acc dropped 10.0 pt (0.600 -&gt; 0.500)" in top
    assert "model collapsed: NaN logits" in top
    assert FINGERPRINT in document and "float32" in document
    assert "layer_set" in document and "[4, 5]" in document  # memit's config
    assert "2.13.0+cpu" in document and "n_edits" in document  # run-wide versions and matrix


def test_collapse_diagnostics(document: str) -> None:
    changes = relative_weight_changes(ROWS)
    assert changes["rome"]["model.layers.5.mlp.down_proj.weight"] == pytest.approx(
        {1: 0.02, 10: 0.2, 100: 2.0})
    assert sorted(changes["memit"]) == [
        "model.layers.4.mlp.down_proj.weight", "model.layers.5.mlp.down_proj.weight"]
    images = [i for i in parse(document).images if i.get("class") == "weight-change"]
    assert len(images) == 1
    assert '<table class="weight-change">' in document and "200%" in document


def test_band_is_baseline_plus_delta_interval_else_edited_interval() -> None:
    assert band(ROWS[6]) == pytest.approx((0.57, 0.63))
    assert band(ROWS[0]) == pytest.approx((0.95, 1.0))  # no delta interval: the edited one
    assert band(ROWS[10]) is None
    no_baseline = row("rome", 1, "mmlu", "acc", 0.5, baseline=None, edited_interval=(0.4, 0.6))
    assert band(no_baseline) == (0.4, 0.6)


def test_collapsed_none_and_nan_rows_render() -> None:
    rows = [
        row("rome", 1, "mmlu", "acc", None, status="error", passed=False, interval=None,
            message="RuntimeError: boom", provenance={}),
        row("rome", 10, "mmlu", "acc", float("nan"), baseline=None, interval=None,
            provenance={"editor": {"weight_change": {"w": {"delta_fro": 1.0, "weight_fro": 0}}}}),
        row("ft", 10, "mmlu", "acc", None, status="collapsed", passed=False, baseline=None,
            provenance={}),
    ]
    document = render_html(rows, {})
    parsed = parse(document)
    assert [i["data-benchmark"] for i in parsed.images if i.get("class") == "curve"] == ["mmlu"]
    assert "error" in parsed.classes and "collapsed" in parsed.classes
    assert not [i for i in parsed.images if i.get("class") == "weight-change"]
    assert "No weight-change statistics" in document  # a zero-norm matrix is skipped


def test_single_n_edits_and_a_short_span() -> None:
    for ns in ([5], [2, 4]):
        rows = [row("rome", n, "mmlu", "acc", 0.55) for n in ns]
        curves = [i for i in parse(render_html(rows, PROVENANCE)).images
                  if i.get("class") == "curve"]
        assert len(curves) == 1


def test_empty_rows_and_escaping() -> None:
    assert "No editguard rows were recorded" in render_html([], {})
    evil = row("<b>rome</b>", 1, "mmlu", "acc", 0.4, passed=False,
               message="<script>alert(1)</script>", provenance={"x": "<i>"})
    evil = dataclasses.replace(evil, model="m&<x>")
    document = render_html([evil], {"note": "<script>"})
    parse(document)
    assert "<script" not in document and "<b>" not in document and "<i>" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document and "m&amp;&lt;x&gt;" in document


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")


def test_headless_chromium_renders_the_page(written: tuple[Path, list[Path]]) -> None:
    chromium()
    directory = written[0]
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "screenshot_report.sh"), str(directory), "1200x2400"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    from matplotlib.image import imread

    pixels = imread(directory / "report.png")  # float RGB(A) in [0, 1]
    assert pixels.shape[:2] == (2400, 1200)
    rgb = np.round(pixels[..., :3] * 255).astype(np.int32).reshape(-1, 3)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]  # np.unique(axis=0) is slow
    assert len(np.unique(packed)) > 50  # text, figures and table, not a blank page
    for colour in ((209, 231, 221), (248, 215, 218)):  # the pass and fail cell backgrounds
        assert (np.abs(rgb - colour).max(axis=1) <= 2).sum() > 500, colour
