"""Editor hyperparameters: per (method, model family) defaults from ``editors/configs/*.toml``."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from editguard.editors.layers import FAMILIES
from editguard.settings import ConfigError


def shipped_config(method: str) -> str | None:
    """``editors/configs/<method>.toml`` as a user finds it in the project, if editguard ships
    one for the method (a plugged-in editor has none)."""
    return f"editors/configs/{method}.toml" if _config_file(method).is_file() else None


def _config_file(method: str) -> Any:
    return resources.files(__package__ or "editguard.editors") / "configs" / f"{method}.toml"


def family_defaults(method: str, family: str) -> dict[str, Any]:
    """``[default]`` of ``editors/configs/<method>.toml`` overlaid with ``[<family>]``."""
    path = _config_file(method)
    if not path.is_file():
        return {}
    table = tomllib.loads(path.read_text())
    unknown = set(table) - {"default", *FAMILIES}
    if unknown:
        raise ConfigError(f"{path}: unknown tables {sorted(unknown)}; accepted: default, "
                          f"{', '.join(sorted(FAMILIES))}")
    return {**table.get("default", {}), **table.get(family, {})}
