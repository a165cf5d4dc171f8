"""Name -> class registries for every extension point, imported lazily.

Each registry knows its built-ins as ``"module:Class"`` strings, reads an entry-point group
(``editguard.editors``, ``editguard.benchmarks``, ``editguard.backends``) so that another
distribution can add to it, and accepts a ``package.module:Class`` path in place of a name.
Nothing is imported until a name is resolved.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from editguard.suggest import did_you_mean

T = TypeVar("T")


class UnknownPluginError(LookupError):
    """A name that no registry holds, or a path that cannot be imported."""


class Registry(Generic[T]):
    """One extension point.

    ``noun`` names it in errors ("editing method"), ``option`` is the command-line option that
    takes its names, ``required`` the attributes a class must have to be accepted.
    """

    def __init__(self, *, noun: str, option: str, group: str, builtins: Mapping[str, str],
                 required: Sequence[str], contract: str,
                 error: type[UnknownPluginError] = UnknownPluginError) -> None:
        self.noun = noun
        self.option = option
        self.group = group
        self.builtins = dict(builtins)
        self.required = tuple(required)
        self.contract = contract  # where the interface is described, for error messages
        self.error = error

    def _entry_points(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def known(self) -> dict[str, str]:
        """Every registered name -> its ``module:Class`` path (built-ins win over plug-ins)."""
        return {**self._entry_points(), **self.builtins}

    def names(self) -> list[str]:
        return sorted(self.known())

    def is_path(self, spec: str) -> bool:
        return ":" in spec

    def label(self, spec: str) -> str:
        """The name ``spec`` goes by in ids, options and tables: the registry name, or for a
        ``package.module:Class`` path the class's ``name``."""
        return str(getattr(self.resolve(spec), "name")) if self.is_path(spec) else spec

    def resolve(self, spec: str) -> type[T]:
        """The class for a registered name or a ``package.module:Class`` path."""
        if self.is_path(spec):
            return self._import(spec, spec)
        known = self.known()
        if spec not in known:
            raise self.error(
                f"unknown {self.noun} {spec!r}.{did_you_mean(spec, known)} Available: "
                f"{', '.join(sorted(known))}; or pass your own as {self.option} "
                "package.module:ClassName"
            )
        return self._import(known[spec], spec)

    def _import(self, path: str, spec: str) -> type[T]:
        module_name, _, attr = path.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise self.error(
                f"{self.noun} {spec!r}: cannot import {path!r} ({err}); a path looks like "
                "'package.module:ClassName' and must be importable from the current directory "
                "or site-packages"
            ) from err
        missing = [m for m in self.required if not hasattr(cls, m)]
        if missing:
            raise self.error(f"{self.noun} {spec!r}: {path} lacks {missing}; see {self.contract} "
                             "for the interface")
        resolved: type[T] = cls
        return resolved
