"""Did-you-mean hints for names a user mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The accepted name closest to ``name``, or None when none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str], template: str = " Did you mean {!r}?") -> str:
    """``template`` filled with the closest choice, or ``""`` when none is close."""
    match = closest(name, choices)
    return template.format(match) if match is not None else ""
