"""Content-addressed store of unedited-model results, shared by tests, workers and runs.

A baseline is keyed by everything that changes it: the model fingerprint, the benchmark's name,
version and configuration, and the backend's device type and dtype. A file lock makes sure one
process computes it while the others wait and then read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from editguard import atomic
from editguard.benchmarks.base import BenchmarkResult


def baseline_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


class BaselineStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, parts: Mapping[str, Any]) -> Path:
        return self.root / f"{baseline_key(parts)}.json"

    def get_or_compute(self, parts: Mapping[str, Any],
                       compute: Callable[[], BenchmarkResult]) -> BenchmarkResult:
        path = self.path(parts)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock"))):
            if path.exists():
                return BenchmarkResult.from_json(json.loads(path.read_text())["result"])
            result = compute()
            payload = json.dumps({"key": dict(parts), "result": result.to_json()}, indent=1)
            atomic.write_text(path, payload)
            return result
