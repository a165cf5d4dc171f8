"""Settings records: frozen dataclasses built from user values, strict about keys and types.

Editors' hyperparameters and benchmarks' options are both validated here. Every integer
setting is a count or an index, so a negative one is refused; a field declared with
``at_least(default, minimum)`` sets a higher floor (a step count of at least 1). A field typed
``Literal[...]`` accepts only those values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from editguard.suggest import did_you_mean

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def at_least(default: int, minimum: int) -> Any:
    """A dataclass field for an integer setting that must be ``>= minimum``."""
    return dataclasses.field(default=default, metadata={"minimum": minimum})


def build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Make the dataclass ``cls`` from ``values``; unknown keys and wrong types are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in values:
        if key not in fields:
            hint = did_you_mean(key, fields, " (did you mean {!r}?)")
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; accepted keys: "
                              f"{', '.join(sorted(fields))}")
    hints = get_type_hints(cls)
    converted: dict[str, Any] = {}
    for key, value in values.items():
        default = fields[key].default
        converted[key] = _coerce(value, None if default is dataclasses.MISSING else default,
                                 f"{where}: {key}")
        _check_minimum(converted[key], fields[key].metadata.get("minimum", 0), f"{where}: {key}")
        if get_origin(hints[key]) is Literal and converted[key] not in get_args(hints[key]):
            accepted = ", ".join(repr(c) for c in get_args(hints[key]))
            raise ConfigError(f"{where}: {key} must be one of {accepted}, got {value!r}")
    return cls(**converted)


def _check_minimum(value: Any, minimum: int, where: str) -> None:
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if isinstance(number, int) and not isinstance(number, bool) and number < minimum:
            raise ConfigError(f"{where} must be at least {minimum}, got {value!r}")


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
        if isinstance(value, str) and not any(isinstance(x, int) for x in default):
            value = [part.strip() for part in value.split(",") if part.strip()]  # "a,b" -> a list
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        kinds = {type(x) for x in default}
        if kinds == {int} and any(isinstance(x, bool) or not isinstance(x, int) for x in value):
            raise ConfigError(f"{where} must be a list of integers, got {value!r}")
        return tuple(value)
    return value
