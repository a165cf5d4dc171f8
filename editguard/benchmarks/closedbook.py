"""Closed-book question answering on held-out GeoNames facts: generation.

Each fact of the held-out pool (no subject is edited) whose relation editguard asks about
becomes a question ("Which country is Pasay in?"), put in lm-evaluation-harness's ``nq_open``
format: the description "Answer these questions:\\n\\n", k solved examples "Q: <q>?\\nA: <a>"
joined by newlines, then "Q: <q>?\\nA:". The model answers greedily until a newline, "." or ","
(at most 16 tokens); the score is nq_open's exact match (case, punctuation and articles ignored)
against the fact's object. The exemplars are eight fixed facts drawn from the pool with the seed
and never scored; every prompt gets the first ``num_fewshot`` of them, so all prompts share one
prefix and the backend runs it once. SmolLM2-135M answers about half of them at 5 shots (under
5% at 0 shots), which makes this the default run's view of generation damage.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import ClassVar

from editguard.benchmarks.base import Metric
from editguard.benchmarks.exact import ARTICLES, exact_match
from editguard.benchmarks.generative import Generative, Prompted
from editguard.edits.facts import Fact
from editguard.edits.geonames import heldout_facts
from editguard.kinds import Kind

EXEMPLARS = 8
DESCRIPTION = "Answer these questions:\n\n"

# How each relation is asked; the subject fills {}. The relations of editguard.edits.facts.
QUESTIONS: Mapping[str, str] = {
    "capital": "What is the capital of {}",
    "continent": "Which continent is {} on",
    "country": "Which country is {} in",
    "currency": "What is the currency of {}",
    "state": "Which US state is {} in",
}


@dataclasses.dataclass(frozen=True)
class ClosedBookSettings:
    limit: int = 100  # questions scored (0 = all); a seeded, fixed subset
    num_fewshot: int = 5  # 0 .. 8 solved examples before each question
    keep_text: bool = False  # keep every answer (baseline and edited) in results.json
    items: str = ""  # a file of item ids ("country|Pasay") to score instead of the sample


def question(fact: Fact) -> str:
    return QUESTIONS[fact.relation].format(fact.subject)


def split_pool(facts: Sequence[Fact], seed: int) -> tuple[list[Fact], list[Fact]]:
    """(exemplars, scored pool) of the facts editguard can ask about, deterministic."""
    askable = sorted((f for f in facts if f.relation in QUESTIONS),
                     key=lambda f: (f.relation, f.subject))
    rng = random.Random(f"closedbook|{seed}")
    exemplars = rng.sample(askable, EXEMPLARS)
    chosen = set(exemplars)
    return exemplars, [f for f in askable if f not in chosen]


class ClosedBook(Generative):
    name: ClassVar[str] = "closedbook"
    version: ClassVar[str] = "2"  # 2: GeoNames facts (1: BIG-bench qa_wikidata)
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("exact_match", primary=True),)
    settings: ClassVar[type] = ClosedBookSettings
    until: ClassVar[tuple[str, ...]] = ("\n", ".", ",")
    max_new_tokens: ClassVar[int] = 16

    def check(self) -> None:
        super().check()
        if self.options.num_fewshot > EXEMPLARS:
            raise ValueError(f"closedbook num_fewshot {self.options.num_fewshot}: there are "
                             f"{EXEMPLARS} exemplars; pass --bench-opt closedbook.num_fewshot="
                             f"{EXEMPLARS} or fewer")

    def items(self) -> list[Prompted]:
        self.check()
        exemplars, pool = split_pool(heldout_facts(self.seed), self.seed)
        shots = "".join(f"Q: {question(f)}?\nA: {f.object}\n"
                        for f in exemplars[: self.options.num_fewshot])
        chosen = self.select(pool, lambda f: f"{f.relation}|{f.subject}")
        return [Prompted(f"{f.relation}|{f.subject}", f"{DESCRIPTION}{shots}Q: {question(f)}?\nA:",
                         (f.object,)) for f in chosen]

    def score(self, item: Prompted, response: str) -> dict[str, float]:
        return {"exact_match": exact_match(response, item.references, ignore=(ARTICLES,))}
