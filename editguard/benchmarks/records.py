"""Benchmark data that lives on the Hugging Face hub, or in a local file of the same schema.

``--bench-opt NAME.path=FILE`` reads a JSON Lines file (one record per line) or a JSON list
instead of the hub dataset; every record must have the benchmark's fields, and the first one that
does not is named. Without a path the hub dataset is loaded with ``datasets`` (the ``hub``
extra); where the hub cannot be reached the run stops at start-up naming the hub id and the path
option, since nothing else can stand in for the data.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from editguard.benchmarks.base import Benchmark


class DataUnavailable(ValueError):
    """The benchmark's data is neither in a local file nor reachable on the hub."""


class SchemaError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class HubData:
    hub_id: str
    config: str | None
    split: str
    fields: tuple[str, ...]  # every record must have these

    def describe(self) -> str:
        config = f", config {self.config!r}" if self.config else ""
        return f"the hub dataset {self.hub_id!r}{config}, split {self.split!r}"


@functools.cache
def _hub_ok() -> str | None:
    """None when hub datasets can be loaded here, else why not."""
    try:
        import datasets  # noqa: F401
    except ImportError:
        return "the 'datasets' package is not installed (pip install 'editguard[hub]')"
    from editguard.models.loading import hub_reachable

    if not hub_reachable():
        return "this machine cannot reach the hub"
    return None


def require(module: str, name: str) -> None:
    """Start-up check that a metric package of the ``hub`` extra is installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DataUnavailable(f"{name}: its metric needs the package {module!r}, which is not "
                              "installed; pip install 'editguard[hub]'")


def check_source(name: str, data: HubData, path: str) -> None:
    """Start-up check: the local file parses and has the fields, or the hub can be reached."""
    if path:
        read_local(name, data, path)
        return
    why = _hub_ok()
    if why is not None:
        raise DataUnavailable(
            f"{name}: its data is {data.describe()}, and {why}; pass --bench-opt "
            f"{name}.path=FILE, a JSON Lines file whose records have the fields "
            f"{', '.join(data.fields)}")


def read_local(name: str, data: HubData, path: str) -> list[dict[str, Any]]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SchemaError(f"{name}: path {path!r} is not a file; give a JSON Lines file whose "
                          f"records have the fields {', '.join(data.fields)}")
    text = file.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise SchemaError(f"{name}: {path!r} is neither JSON Lines nor a JSON list ({err})") \
            from None
    if not records:
        raise SchemaError(f"{name}: {path!r} holds no records")
    for index, record in enumerate(records):
        missing = [f for f in data.fields if not isinstance(record, dict) or f not in record]
        if missing:
            raise SchemaError(
                f"{name}: record {index} of {path!r} lacks {', '.join(missing)}; each record "
                f"needs the fields {', '.join(data.fields)} (the schema of {data.hub_id}), "
                f"got {sorted(record) if isinstance(record, dict) else type(record).__name__}")
    return records


def load_records(name: str, data: HubData, path: str) -> list[dict[str, Any]]:
    """The records, from ``path`` or the hub, checked against the fields."""
    if path:
        return read_local(name, data, path)
    check_source(name, data, path)
    import datasets

    rows = datasets.load_dataset(data.hub_id, data.config, split=data.split)
    records = [dict(r) for r in rows]
    missing = [f for f in data.fields if records and f not in records[0]]
    if missing:
        raise SchemaError(f"{name}: {data.describe()} has no field {missing[0]!r}")
    return records


def ids(records: Sequence[dict[str, Any]], split: str) -> list[str]:
    """Item ids ``<split>/<index>``: the record's place in the split (or the local file)."""
    return [f"{split}/{i}" for i in range(len(records))]


def file_provenance(path: str) -> dict[str, Any]:
    """A local data file's contents, by digest (a baseline must not outlive an edited file that
    kept its name); nothing for no file."""
    if not path:
        return {}
    return {"file_sha256": hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()}


def provenance(data: HubData, path: str) -> dict[str, Any]:
    """What the scores depend on: the hub dataset, or the local file's contents."""
    return {"data": dataclasses.asdict(data), **file_provenance(path)}


class HubRecords(Benchmark):
    """A benchmark over ``data``: the hub dataset, or the local file its ``path`` option names.

    Brings the start-up check of that source, the records with their ids, and the provenance in
    ``config()``; a subclass builds its items from ``records()``. Put it before the benchmark
    kind in the bases: ``class Task(HubRecords, MultipleChoice)``.
    """

    data: ClassVar[HubData]

    def check(self) -> None:
        super().check()
        check_source(self.name, self.data, self.options.path)

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """(item id, record) in the split's (or the file's) order."""
        records = load_records(self.name, self.data, self.options.path)
        return list(zip(ids(records, self.data.split), records))

    def config(self) -> dict[str, Any]:
        return {**super().config(), **provenance(self.data, self.options.path)}
