"""A case of the matrix and what scoring it produced: the nouns every layer passes around."""

from __future__ import annotations

import dataclasses
from typing import Literal

from editguard.benchmarks.base import BenchmarkResult
from editguard.kinds import rank


@dataclasses.dataclass(frozen=True, order=True)
class Case:
    """One test: the edit state (model, method, n_edits) and the benchmark that scores it."""

    model: str
    method: str
    n_edits: int
    benchmark: str
    kind: str = "capability"  # the benchmark's kind (editguard.kinds), for ordering

    def sort_key(self) -> tuple[str, str, int, int, str]:
        """Along the trajectory: model, method, n_edits, then kind order, then benchmark."""
        return (self.model, self.method, self.n_edits, rank(self.kind), self.benchmark)

    @property
    def id(self) -> str:
        return f"{self.model}-{self.method}-n{self.n_edits}-{self.benchmark}"

    @property
    def group(self) -> str:
        """Cases that share a trajectory of edits run on one xdist worker."""
        return f"{self.model}-{self.method}"

    @property
    def label(self) -> str:
        return f"{self.model} | {self.method} | n={self.n_edits}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: Literal["ok", "collapsed", "error"]
    edited: BenchmarkResult | None = None
    baseline: BenchmarkResult | None = None
    message: str = ""
