"""Self-checking cache files: a checksum of the content and the key it was computed for.

A cached artifact that fails its check is never used: it is renamed aside (kept for
inspection), the caller recomputes it under its lock, and a ``CacheRepairWarning`` says so in
the run's output.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path


class CorruptCacheError(ValueError):
    """A cache file that cannot be trusted: unreadable, another key's, or not its checksum."""


class CacheRepairWarning(UserWarning):
    """A corrupt cache file was set aside and its content recomputed."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(expected_key: str, found_key: object, expected_sha: str, found_sha: object,
          path: Path) -> None:
    """Raise ``CorruptCacheError`` unless both the key and the checksum match."""
    if found_key != expected_key:
        raise CorruptCacheError(f"{path.name} was stored for key {found_key!r}, not "
                                f"{expected_key!r}")
    if found_sha != expected_sha:
        raise CorruptCacheError(f"{path.name} fails its checksum (stored {found_sha!r}, content "
                                f"{expected_sha!r})")


def set_aside(path: Path, reason: str) -> str:
    """Rename a corrupt cache file to ``<name>.corrupt-<time>`` and warn; returns the note
    to record in provenance."""
    aside = path.with_name(f"{path.name}.corrupt-{time.time_ns()}")
    path.replace(aside)
    note = f"recomputed: {reason}; the bad file is kept as {aside}"
    warnings.warn(f"editguard cache: {note}", CacheRepairWarning, stacklevel=2)
    return note
