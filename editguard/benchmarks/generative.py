"""Benchmarks scored on generated text: greedy continuations cut at stop strings, then a
per-item metric against the references. The texts can be kept in the result (``keep_text``)
so edited and baseline answers compare item by item."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from editguard.backends.base import Backend, Generation
from editguard.benchmarks.base import Benchmark, BenchmarkResult, restrict


@dataclasses.dataclass(frozen=True)
class Prompted:
    """A generation item: the prompt and the reference answers (any of them counts)."""

    id: str
    context: str
    references: tuple[str, ...]


class GenerationUnsupported(TypeError):
    pass


class Generative(Benchmark):
    """Subclasses set ``until`` and ``max_new_tokens`` and implement ``items`` (the selected
    items, in a fixed order) and ``score`` (metric -> value for one response)."""

    generates: ClassVar[bool] = True
    until: ClassVar[tuple[str, ...]] = ("\n",)
    max_new_tokens: ClassVar[int] = 32

    def items(self) -> list[Prompted]:
        raise NotImplementedError

    def score(self, item: Prompted, response: str) -> dict[str, float]:
        raise NotImplementedError

    def request(self, item: Prompted) -> Generation:
        """What the backend is asked for one item (the class's stop strings and token limit)."""
        return Generation(item.context, self.max_new_tokens, self.until)

    def evaluate(self, backend: Backend, item_ids: Sequence[str] | None = None) -> BenchmarkResult:
        if not callable(getattr(backend, "generate", None)):
            raise GenerationUnsupported(
                f"benchmark {self.name} generates text and backend "
                f"{getattr(backend, 'name', type(backend).__name__)!r} cannot; use --backend hf "
                f"or leave {self.name} out of --benchmarks")
        chosen = restrict(self.items(), item_ids, lambda i: i.id)
        before = getattr(backend, "truncated", 0)
        texts = backend.generate([self.request(i) for i in chosen])
        scores: dict[str, list[float]] = {m.name: [] for m in self.metrics}
        for item, text in zip(chosen, texts, strict=True):
            for metric, value in self.score(item, text).items():
                scores[metric].append(value)
        result = dataclasses.replace(self.result([i.id for i in chosen], scores),
                                     truncated=getattr(backend, "truncated", 0) - before)
        if getattr(self.options, "keep_text", False):
            result = dataclasses.replace(result, texts=tuple(texts))
        return result
