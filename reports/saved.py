"""A saved run: a run's rows kept under a name in the cache, and its comparison with a later run.

``save`` writes ``<cache>/runs/<NAME>.json`` atomically; one file per name, so saving under a
name that exists replaces that run. The file is self-checking::

    {
      "format": 1,
      "name": "NAME",                 # the name it was saved under (must match the file name)
      "saved_at": "2025-01-31T12:00:00+00:00",
      "sha256": "...",                # of the canonical JSON of {format, name, saved_at, run}
      "run": {"provenance": {...}, "results": [Row.to_dict(), ...]}   # results.json's document
    }

``load`` trusts a file only when its name and checksum match, so a file copied over another
name, or edited by hand, is refused (re-save it). ``compare`` sets a run's rows against a saved
run's: the change of every shared (model, method, n_edits, benchmark, metric) row in points, and,
given a limit, which of them dropped more than it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from editguard import atomic, integrity, kinds
from editguard.suggest import did_you_mean
from editguard.verdicts.row import Row

FORMAT = 1
SUFFIX = ".json"
MAX_NAME_LENGTH = 100
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_FORM = (f"letters, digits, '.', '_' and '-', starting with a letter or digit, at most "
             f"{MAX_NAME_LENGTH} characters, e.g. 'main' or 'rome-2024-06-01'")
# A drop equal to the limit is not "more than" it; 0.40 -> 0.35 is 5.000000000000004 pt in floats.
TOLERANCE_PT = 1e-9

Key = tuple[str, str, int, str, str]  # (model, method, n_edits, benchmark, metric)


class SavedRunError(ValueError):
    """A saved run that cannot be used: a bad name, an unknown name, or a corrupt file."""


@dataclasses.dataclass(frozen=True)
class SavedRun:
    name: str
    path: Path
    rows: list[Row]
    provenance: dict[str, Any]
    saved_at: str  # ISO 8601, UTC


def runs_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "runs"


def check_name(name: str) -> str:
    """``name`` if it is a valid saved-run name, else ``SavedRunError``."""
    if len(name) > MAX_NAME_LENGTH or NAME_PATTERN.fullmatch(name) is None:
        raise SavedRunError(f"saved run name {name!r} is not valid: use {NAME_FORM}")
    return name


def path_of(cache_dir: Path, name: str) -> Path:
    return runs_dir(cache_dir) / f"{check_name(name)}{SUFFIX}"


def names(cache_dir: Path) -> list[str]:
    """The names of the runs saved under ``cache_dir``, sorted."""
    directory = runs_dir(cache_dir)
    if not directory.is_dir():
        return []
    found = (path.name[: -len(SUFFIX)] for path in directory.glob(f"*{SUFFIX}") if path.is_file())
    return sorted(name for name in found
                  if len(name) <= MAX_NAME_LENGTH and NAME_PATTERN.fullmatch(name))


def _checksum(header: Mapping[str, Any], run: object) -> str:
    payload = {**header, "run": run}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return integrity.sha256_hex(text.encode("utf-8"))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def save(cache_dir: Path, name: str, rows: Sequence[Row], provenance: Mapping[str, Any]) -> Path:
    """Keep ``rows`` as the saved run ``name`` (replacing one of that name); return its path.

    Raises ``ValueError`` (before touching any file) when a row or the provenance is not JSON,
    ``OSError`` when the file cannot be written.
    """
    # storage imports pandas (through the table renderer): only when a run is saved
    from editguard.reports import storage

    path = path_of(cache_dir, name)
    run = json.loads(storage.results_json(rows, provenance))
    header = {"format": FORMAT, "name": name, "saved_at": _now()}
    document = {**header, "sha256": _checksum(header, run), "run": run}
    atomic.write_text(path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    return path


def _corrupt(path: Path, why: str) -> SavedRunError:
    return SavedRunError(f"saved run file {path} cannot be trusted: {why}; save the run again "
                         f"under this name (pytest ... --save {path.name[: -len(SUFFIX)]}), or "
                         f"delete the file")


def load(cache_dir: Path, name: str) -> SavedRun:
    """The saved run ``name``, checked against its name and checksum."""
    path = path_of(cache_dir, name)
    if not path.is_file():
        saved = names(cache_dir)
        listing = ", ".join(saved) if saved else "none"
        raise SavedRunError(f"no saved run named {name!r} under {runs_dir(cache_dir)}; saved runs: "
                            f"{listing}.{did_you_mean(name, saved)} Save one with --save NAME "
                            "(or point --editguard-cache at the cache that has it)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"it cannot be read as JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _corrupt(path, f"it holds a {type(document).__name__}, not an object")
    if document.get("format") != FORMAT:
        raise _corrupt(path, f"its format is {document.get('format')!r}, this editguard reads "
                             f"format {FORMAT}")
    run = document.get("run")
    header = {key: document.get(key) for key in ("format", "name", "saved_at")}
    if document.get("name") != name:
        raise _corrupt(path, f"it was saved as {document.get('name')!r}, not {name!r} (a saved "
                             "run copied or renamed to another name)")
    try:
        integrity.check(name, document.get("name"), _checksum(header, run), document.get("sha256"),
                        path)
    except integrity.CorruptCacheError as exc:
        raise _corrupt(path, str(exc)) from None
    except (TypeError, ValueError) as exc:  # content that is not canonical JSON
        raise _corrupt(path, f"its content cannot be checksummed ({exc})") from None
    try:
        if not isinstance(run, dict) or not isinstance(run.get("results"), list):
            raise TypeError("'run' has no 'results' list")
        rows = [Row.from_dict(record) for record in run["results"]]
        provenance = run.get("provenance", {})
        if not isinstance(provenance, dict):
            raise TypeError(f"provenance is a {type(provenance).__name__}, not an object")
    except (TypeError, ValueError) as exc:
        raise _corrupt(path, f"its rows are not editguard rows ({exc})") from None
    return SavedRun(name=name, path=path, rows=rows, provenance=provenance,
                    saved_at=str(document.get("saved_at")))


# --- comparison -------------------------------------------------------------------------------


def _key(row: Row) -> Key:
    return (row.model, row.method, row.n_edits, row.benchmark, row.metric)


def _fingerprint(row: Row) -> str | None:
    """The scored weights: the model's fingerprint, and an --edited checkpoint's after it."""
    parts = []
    for section, inner in (("model", None), ("method", "details")):
        found: object = row.provenance.get(section)
        if inner is not None:
            found = found.get(inner) if isinstance(found, dict) else None
        value = found.get("fingerprint") if isinstance(found, dict) else None
        if isinstance(value, str) and value:
            parts.append(value)
    return "+".join(parts) or None


def _score(row: Row) -> float | None:
    if row.status != "ok" or row.edited is None or not math.isfinite(row.edited):
        return None
    return row.edited


@dataclasses.dataclass(frozen=True)
class Change:
    """One (model, method, n_edits, benchmark, metric) row found in both runs."""

    saved: Row
    current: Row
    regressed: bool  # only ever True when a limit was given

    @property
    def change_pt(self) -> float | None:
        """current - saved edited score, in points; None unless both were scored."""
        before, after = _score(self.saved), _score(self.current)
        return None if before is None or after is None else 100.0 * (after - before)

    @property
    def other_model(self) -> bool:
        """Both rows name a model fingerprint, and they differ."""
        before, after = _fingerprint(self.saved), _fingerprint(self.current)
        return before is not None and after is not None and before != after


def _regressed(saved: Row, current: Row, max_drop_pt: float | None) -> bool:
    if max_drop_pt is None or saved.status != "ok":
        return False
    if current.status != "ok":
        return True
    before, after = _score(saved), _score(current)
    if before is None or after is None:
        return False
    return 100.0 * (before - after) > max_drop_pt + TOLERANCE_PT


def _cell(row: Row) -> str:
    if row.status != "ok":
        return row.status
    return "n/a" if row.edited is None else f"{row.edited:.3f}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    saved_name: str
    max_drop_pt: float | None
    changes: list[Change]  # in table order
    only_current: int  # rows of this run the saved run lacks
    only_saved: int  # rows of the saved run this run lacks

    @property
    def regressions(self) -> list[Change]:
        return [change for change in self.changes if change.regressed]

    @property
    def other_models(self) -> list[Change]:
        return [change for change in self.changes if change.other_model]

    def summary(self) -> str:
        noun = "row" if len(self.changes) == 1 else "rows"
        head = f"{len(self.changes)} shared {noun}"
        if self.max_drop_pt is None:
            return f"{head} compared with saved run {self.saved_name} (no limit on drops)"
        return (f"{head}: {len(self.regressions)} regressed more than {self.max_drop_pt:g} pt "
                f"against saved run {self.saved_name}")

    def regression_lines(self) -> list[str]:
        """One line per regression, e.g. ``mmlu acc dropped 10.0 pt against saved run base
        (0.400 -> 0.300), limit 5.0 pt [tiny | rome | n=10]``."""
        out = []
        for change in self.regressions:
            saved, current = change.saved, change.current
            where = f"[{current.model} | {current.method} | n={current.n_edits}]"
            if current.status != "ok":
                out.append(f"{current.benchmark} {current.metric} is {current.status} now, was "
                           f"{_cell(saved)} in saved run {self.saved_name} {where}")
            else:
                drop = -(change.change_pt or 0.0)
                out.append(f"{current.benchmark} {current.metric} dropped {drop:.1f} pt against "
                           f"saved run {self.saved_name} ({_cell(saved)} -> {_cell(current)}), "
                           f"limit {self.max_drop_pt:g} pt {where}")
        return out

    def notes(self) -> list[str]:
        """The rows only one run has, and the models whose weights differ between the runs."""
        out = []
        if self.only_current or self.only_saved:
            out.append(f"{self.only_current} rows only in this run, {self.only_saved} only in "
                       f"saved run {self.saved_name} (not compared)")
        models: dict[str, tuple[str | None, str | None]] = {}
        for change in self.other_models:
            models.setdefault(change.current.model,
                              (_fingerprint(change.saved), _fingerprint(change.current)))
        for model, (before, after) in sorted(models.items()):
            count = sum(1 for c in self.other_models if c.current.model == model)
            out.append(f"note: model {model} is not the model of saved run {self.saved_name} "
                       f"(fingerprint {before} then, {after} now): its {count} shared rows "
                       "compare different weights")
        return out

    def render(self) -> list[str]:
        """The table of shared rows, the summary line, the notes and one line per regression."""
        if not self.changes:
            return [f"no rows in common with saved run {self.saved_name}", self.summary(),
                    *self.notes()]
        body = []
        for change in self.changes:
            row = change.current
            delta = change.change_pt
            flags = [flag for flag, on in (("REGRESSED", change.regressed),
                                           ("other model", change.other_model)) if on]
            body.append([row.model, row.method, str(row.n_edits), f"{row.benchmark}.{row.metric}",
                         _cell(change.saved), _cell(row),
                         "" if delta is None else f"{delta:+.1f}", ", ".join(flags)])
        headers = ["model", "method", "n_edits", "metric", self.saved_name, "now", "change (pt)", ""]
        table = str(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
        return [*table.splitlines(), "", self.summary(), *self.notes(), *self.regression_lines()]


def compare(current: Sequence[Row], saved: Sequence[Row], max_drop_pt: float | None = None, *,
            saved_name: str = "saved") -> Comparison:
    """Set ``current`` against ``saved`` row by row; with ``max_drop_pt``, a shared row regressed
    when its edited score is more than that many points below the saved one, or when it is
    collapsed or an error now and was ok then. Duplicate keys keep their last row."""
    if max_drop_pt is not None and not (math.isfinite(max_drop_pt) and max_drop_pt >= 0):
        raise ValueError(f"max_drop_pt must be a number of points >= 0, got {max_drop_pt!r}")
    now = {_key(row): row for row in current}
    then = {_key(row): row for row in saved}
    kind_of = {key: row.kind for key, row in now.items()}

    def order(key: Key) -> tuple[str, str, int, int, str, str]:
        model, method, n_edits, benchmark, metric = key
        return (model, method, n_edits, kinds.rank(kind_of[key]), benchmark, metric)

    shared = sorted((key for key in now if key in then), key=order)
    changes = [Change(then[key], now[key], _regressed(then[key], now[key], max_drop_pt))
               for key in shared]
    return Comparison(saved_name=saved_name, max_drop_pt=max_drop_pt, changes=changes,
                      only_current=len(now) - len(shared), only_saved=len(then) - len(shared))
