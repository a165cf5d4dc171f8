"""Editor names -> classes: the built-ins, the ``editguard.editors`` entry points, and
``package.module:Class`` paths.

Classes are imported only when asked for. A third-party editor is constructed like the built-ins,
``cls(overrides)``, and satisfies ``editguard.editors.base.Editor`` (subclassing
``editguard.editors.base.EditorBase`` is the short way).
"""

from __future__ import annotations

from collections.abc import Mapping

from editguard.editors.base import Editor
from editguard.registry import Registry, UnknownPluginError

ENTRY_POINT_GROUP = "editguard.editors"


class UnknownEditorError(UnknownPluginError):
    pass


EDITORS: Registry[Editor] = Registry(
    noun="editing method", option="--methods", group=ENTRY_POINT_GROUP,
    builtins={"alphaedit": "editguard.editors.alphaedit:AlphaEditEditor",
              "ft": "editguard.editors.ft:FineTuneEditor",
              "grace": "editguard.editors.grace:GraceEditor",
              "kn": "editguard.editors.kn:KnEditor",
              "memit": "editguard.editors.memit:MemitEditor",
              "mend": "editguard.editors.mend:MendEditor",
              "pmet": "editguard.editors.pmet:PmetEditor",
              "rome": "editguard.editors.rome:RomeEditor",
              "serac": "editguard.editors.serac:SeracEditor",
              "ultraedit": "editguard.editors.ultraedit:UltraEditEditor"},
    required=("name", "prepare", "apply", "parameter_names"),
    contract="editguard.editors.base.Editor", error=UnknownEditorError)


def available() -> list[str]:
    return EDITORS.names()


def resolve(spec: str) -> type[Editor]:
    """The editor class for a registry name or a ``package.module:Class`` path."""
    return EDITORS.resolve(spec)


def create(spec: str, overrides: Mapping[str, object] | None = None) -> Editor:
    return resolve(spec)(overrides)  # type: ignore[call-arg]
