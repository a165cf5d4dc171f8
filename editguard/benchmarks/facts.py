"""Held-out fact completion: does the model still know facts that no edit touched?

Four-way multiple choice over GeoNames facts from the held-out pool (no subject is edited): "The country of <subject> is" followed by the true object or three other objects of
the same relation, scored by summed log-likelihood. SmolLM2-135M is far above the 25% chance
level here, unlike on MMLU, so this is where a small model's damage shows.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import ClassVar

from editguard.benchmarks.base import Choice, Metric, MultipleChoice
from editguard.edits.facts import Fact
from editguard.edits.geonames import heldout_facts
from editguard.kinds import Kind
from editguard.settings import at_least


@dataclasses.dataclass(frozen=True)
class FactsSettings:
    limit: int = 200  # facts scored (0 = all held-out facts); a seeded, fixed subset
    n_choices: int = at_least(4, 2)
    items: str = ""  # a file of item ids ("relation|subject") to score instead of the sample


def fact_items(facts: Sequence[Fact], n_choices: int, seed: int) -> list[Choice]:
    """One item per fact whose relation has enough other objects, sorted by id."""
    objects: dict[str, list[str]] = {}
    for f in facts:
        objects.setdefault(f.relation, [])
        if f.object not in objects[f.relation]:
            objects[f.relation].append(f.object)
    out = []
    for f in facts:
        others = sorted(o for o in objects[f.relation] if o != f.object)
        if len(others) < n_choices - 1:
            continue
        rng = random.Random(f"{seed}|{f.relation}|{f.subject}")
        choices = [f.object, *rng.sample(others, n_choices - 1)]
        rng.shuffle(choices)
        out.append(Choice(f"{f.relation}|{f.subject}", f.prompt,
                          tuple(" " + c for c in choices), choices.index(f.object)))
    return sorted(out, key=lambda i: i.id)


class Facts(MultipleChoice):
    name: ClassVar[str] = "facts"
    version: ClassVar[str] = "2"  # 2: GeoNames facts (1: BIG-bench qa_wikidata)
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("acc", primary=True),)
    settings: ClassVar[type] = FactsSettings

    def items(self) -> list[Choice]:
        opts: FactsSettings = self.options
        pool = fact_items(heldout_facts(self.seed), opts.n_choices, self.seed)
        return self.select(pool, lambda c: c.id)
