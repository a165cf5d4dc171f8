"""Writing a run's report files: degradation.md, degradation.csv and results.json."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reports import table
from reports.row import Row

MARKDOWN = "degradation.md"
CSV = "degradation.csv"
RESULTS = "results.json"


def results_json(rows: Sequence[Row], provenance: Mapping[str, Any]) -> str:
    """``{"provenance": ..., "results": [row dicts in table order]}``; raises on NaN/non-JSON."""
    document = {
        "provenance": dict(provenance),
        "results": [row.to_dict() for row in table.ordered(rows)],
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (temp files are created 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_report(directory: Path, rows: Sequence[Row], provenance: Mapping[str, Any]) -> list[Path]:
    """Write the three report files into ``directory`` (created if needed); return their paths."""
    directory = Path(directory)
    # Render everything first so that a row or provenance that cannot be serialised leaves
    # the directory untouched.
    contents = {
        MARKDOWN: table.render_markdown(rows),
        CSV: table.render_csv(rows),
        RESULTS: results_json(rows, provenance),
    }
    directory.mkdir(parents=True, exist_ok=True)
    mode = _file_mode()
    paths = []
    for name, text in contents.items():
        path = directory / name
        _write_atomic(path, text, mode)
        paths.append(path)
    return paths
