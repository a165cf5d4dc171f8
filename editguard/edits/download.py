"""Downloading a public edit set, with an error that says what to do offline."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from editguard import atomic


class OfflineError(ConnectionError):
    """A download failed because the host could not be reached."""


def download(url: str, dest: Path, timeout: float = 60.0, local_hint: str = "") -> Path:
    """Download ``url`` to ``dest`` (temporary file + rename). Raises ``OfflineError`` when unreachable."""
    dest = Path(dest)
    try:
        with atomic.replacing(dest) as temp, temp.open("wb") as handle, \
                urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                handle.write(block)
    except (urllib.error.URLError, OSError) as exc:
        hint = f"pass a local copy instead, e.g. {local_hint}" if local_hint else "pass a local copy instead"
        raise OfflineError(f"could not download {url} ({exc}); this machine looks offline or the host is "
                           f"unreachable: fetch the file elsewhere and {hint}") from exc
    return dest
