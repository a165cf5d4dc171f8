"""Writing a run's report files: degradation.md, degradation.csv, results.json and report.html."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from editguard import atomic
from editguard.reports import html, table
from editguard.verdicts.row import Row

MARKDOWN = "degradation.md"
CSV = "degradation.csv"
RESULTS = "results.json"
HTML = "report.html"


def results_json(rows: Sequence[Row], provenance: Mapping[str, Any]) -> str:
    """``{"provenance": ..., "results": [row dicts in table order]}``; raises on NaN/non-JSON."""
    document = {
        "provenance": dict(provenance),
        "results": [row.to_dict() for row in table.ordered(rows)],
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def write_report(directory: Path, rows: Sequence[Row], provenance: Mapping[str, Any]) -> list[Path]:
    """Write the four report files into ``directory`` (created if needed); return their paths."""
    directory = Path(directory)
    # Render everything first so that a row or provenance that cannot be serialised leaves
    # the directory untouched.
    contents = {
        MARKDOWN: table.render_markdown(rows),
        CSV: table.render_csv(rows),
        RESULTS: results_json(rows, provenance),
        HTML: html.render_html(rows, provenance),
    }
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in contents.items():
        path = directory / name
        atomic.write_text(path, text)
        paths.append(path)
    return paths
