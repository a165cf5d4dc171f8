"""Benchmarks scored on generated text: greedy continuations cut at stop strings, then a
per-item metric against the references. The texts can be kept in the result (``keep_text``)
so edited and baseline answers compare item by item."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from editguard.backends.base import Backend, Generation
from editguard.benchmarks.base import Benchmark, BenchmarkResult, restrict


@dataclasses.dataclass(frozen=True)
class Prompted:
    """A generation item: the prompt and the reference answers (any of them counts)."""

    id: str
    context: str
    references: tuple[str, ...]


ItemT = TypeVar("ItemT", bound=Prompted)


class GenerationUnsupported(TypeError):
    pass


class Generative(Benchmark, Generic[ItemT]):
    """Subclasses set ``until`` and ``max_new_tokens`` and implement ``items`` (the selected
    items, in a fixed order) and ``score`` (metric -> value for one response). An item that
    needs several generations (one per entity type, say) overrides ``requests`` and
    ``score_responses`` instead."""

    until: ClassVar[tuple[str, ...]] = ("\n",)
    max_new_tokens: ClassVar[int] = 32

    def items(self) -> list[ItemT]:
        raise NotImplementedError

    def score(self, item: ItemT, response: str) -> dict[str, float]:
        raise NotImplementedError

    def request(self, item: ItemT) -> Generation:
        """What the backend is asked for one item (the class's stop strings and token limit)."""
        return Generation(item.context, self.max_new_tokens, self.until)

    def requests(self, item: ItemT) -> list[Generation]:
        """Everything generated for one item: ``request``'s one by default."""
        return [self.request(item)]

    def score_responses(self, item: ItemT, responses: Sequence[str]) -> dict[str, float]:
        """Metric -> value from the responses to ``requests(item)``, in their order."""
        (response,) = responses
        return self.score(item, response)

    def evaluate(self, backend: Backend, item_ids: Sequence[str] | None = None) -> BenchmarkResult:
        if not callable(getattr(backend, "generate", None)):
            raise GenerationUnsupported(
                f"benchmark {self.name} generates text and backend "
                f"{getattr(backend, 'name', type(backend).__name__)!r} cannot; use --backend hf "
                f"or leave {self.name} out of --benchmarks")
        chosen = restrict(self.items(), item_ids, lambda i: i.id)
        before = getattr(backend, "truncated", 0)
        asked = [self.requests(i) for i in chosen]
        texts = backend.generate([r for rs in asked for r in rs])
        scores: dict[str, list[float]] = {m.name: [] for m in self.metrics}
        kept: list[str] = []
        at = 0
        for item, rs in zip(chosen, asked, strict=True):
            responses = texts[at : at + len(rs)]
            at += len(rs)
            kept.append(" | ".join(responses))
            for metric, value in self.score_responses(item, responses).items():
                scores[metric].append(value)
        result = dataclasses.replace(self.result([i.id for i in chosen], scores),
                                     truncated=getattr(backend, "truncated", 0) - before)
        if getattr(self.options, "keep_text", False):
            result = dataclasses.replace(result, texts=tuple(kept))
        return result
