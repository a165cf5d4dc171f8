"""Hyperparameters: per (method, model family) defaults from TOML, strict about unknown keys."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def family_defaults(method: str, family: str) -> dict[str, Any]:
    """``[default]`` of ``editors/configs/<method>.toml`` overlaid with ``[<family>]``."""
    path = resources.files("editors") / "configs" / f"{method}.toml"
    if not path.is_file():
        return {}
    table = tomllib.loads(path.read_text())
    unknown = set(table) - {"default", "llama", "gpt2", "gpt_neox", "gptj"}
    if unknown:
        raise ConfigError(f"{path}: unknown tables {sorted(unknown)}")
    return {**table.get("default", {}), **table.get(family, {})}


def build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Make the dataclass ``cls`` from ``values``; unknown keys and wrong types are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; accepted keys: "
                              f"{', '.join(sorted(fields))}")
    converted: dict[str, Any] = {}
    for key, value in values.items():
        default = fields[key].default
        converted[key] = _coerce(value, None if default is dataclasses.MISSING else default,
                                 f"{where}: {key}")
    return cls(**converted)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    return value
