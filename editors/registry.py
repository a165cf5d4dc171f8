"""Editor names -> classes: the built-ins, entry points, and ``package.module:Class`` paths.

Classes are imported only when asked for. A third-party editor is constructed like the built-ins,
``cls(overrides, cache_dir=..., seed=...)``, and satisfies ``editors.base.Editor`` (subclassing
``editors.base.EditorBase`` is the short way).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from editors.base import Editor

BUILTINS: dict[str, str] = {
    "ft": "editors.ft:FineTuneEditor",
    "memit": "editors.memit:MemitEditor",
    "rome": "editors.rome:RomeEditor",
}
ENTRY_POINT_GROUP = "editguard.editors"


class UnknownEditorError(LookupError):
    pass


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    return sorted({**_entry_points(), **BUILTINS})


def _import(path: str, spec: str) -> type:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise UnknownEditorError(
            f"editor {spec!r}: cannot import {path!r} ({err}); an editor path looks like "
            "'package.module:ClassName' and must be importable from the current directory "
            "or site-packages"
        ) from err
    missing = [m for m in ("name", "prepare", "apply", "parameter_names") if not hasattr(cls, m)]
    if missing:
        raise UnknownEditorError(f"editor {spec!r}: {path} lacks {missing}; see editors/base.py "
                                 "(Editor) for the interface")
    return cls


def resolve(spec: str) -> type:
    """The editor class for a registry name or a ``package.module:Class`` path."""
    if ":" in spec:
        return _import(spec, spec)
    known = {**_entry_points(), **BUILTINS}
    if spec not in known:
        close = difflib.get_close_matches(spec, list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownEditorError(
            f"unknown editing method {spec!r}.{hint} Available: {', '.join(sorted(known))}; "
            "or pass your own as --methods package.module:ClassName"
        )
    return _import(known[spec], spec)


def create(spec: str, overrides: Mapping[str, Any] | None = None, *, cache_dir: Path,
           seed: int = 0) -> Editor:
    editor: Editor = resolve(spec)(overrides, cache_dir=cache_dir, seed=seed)
    return editor
