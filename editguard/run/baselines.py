"""Content-addressed store of unedited-model results, shared by tests, workers and runs.

A baseline is keyed by everything that changes it: the model fingerprint, the benchmark's name,
version and configuration, and the backend's description. A file lock makes sure one process
computes it while the others wait and then read it. Each file carries its key and a checksum
of its result; a file that fails either check is set aside and recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from editguard import atomic, integrity
from editguard.benchmarks.base import BenchmarkResult


def baseline_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _canonical(result: Mapping[str, Any]) -> bytes:
    return json.dumps(result, sort_keys=True, allow_nan=False).encode()


class BaselineStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, parts: Mapping[str, Any]) -> Path:
        return self.root / f"{baseline_key(parts)}.json"

    def get_or_compute(self, parts: Mapping[str, Any], compute: Callable[[], BenchmarkResult]
                       ) -> tuple[BenchmarkResult, str]:
        """The baseline for ``parts`` and how it was obtained: ``"read"``, ``"computed"``, or
        ``"recomputed: <why>"`` when the stored file failed its checks."""
        path = self.path(parts)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock"))):
            status = "computed"
            if path.exists():
                try:
                    return self._read(path, baseline_key(parts)), "read"
                except integrity.CorruptCacheError as err:
                    status = integrity.set_aside(path, str(err))
            result = compute()
            stored = result.to_json()
            payload = {"key": baseline_key(parts), "parts": dict(parts),
                       "sha256": integrity.sha256_hex(_canonical(stored)), "result": stored}
            atomic.write_text(path, json.dumps(payload, indent=1, allow_nan=False))
            return result, status

    @staticmethod
    def _read(path: Path, key: str) -> BenchmarkResult:
        try:
            payload = json.loads(path.read_bytes())
            stored = payload["result"]
            found_key, found_sha = payload.get("key"), payload.get("sha256")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise integrity.CorruptCacheError(f"{path.name} is not a readable baseline "
                                              f"({type(err).__name__}: {err})") from None
        if found_sha is None:
            raise integrity.CorruptCacheError(f"{path.name} has no checksum (written by an "
                                              "editguard that did not check its caches)")
        integrity.check(key, found_key, integrity.sha256_hex(_canonical(stored)), found_sha, path)
        try:
            return BenchmarkResult.from_json(stored)
        except (KeyError, TypeError, ValueError) as err:
            raise integrity.CorruptCacheError(f"{path.name} holds a malformed result "
                                              f"({type(err).__name__}: {err})") from None
