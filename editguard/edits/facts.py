"""Facts as (relation, subject, object) and the counterfactual edits built from them.

The embedded edit set rewrites GeoNames facts (``editguard.edits.geonames``): the facts are
split by subject into an edit pool and a held-out pool; each edit of the pool asks the model to
say another object of the same relation ("Toronto is located in the country of" -> "Japan"),
in CounterFact's shape (paraphrases, neighbourhood prompts from the held-out pool).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from editguard.edits.request import EditRequest, Neighbour
from editguard.edits.sampling import unit_hash

N_NEIGHBOURS = 3


@dataclasses.dataclass(frozen=True)
class Fact:
    """A triple, stated as "The <relation> of <subject> is" -> object."""

    relation: str
    subject: str
    object: str

    @property
    def prompt(self) -> str:
        return f"The {self.relation} of {self.subject} is"


@dataclasses.dataclass(frozen=True)
class RelationTemplates:
    """How a relation is asked: "The <relation> of {} is" and two paraphrases, each ending
    before the object."""

    base: str
    paraphrases: tuple[str, str]

    @property
    def slug(self) -> str:
        return self.base.removeprefix("The ").removesuffix(" of {} is").replace(" ", "-")


def _relation(name: str, *paraphrases: str) -> RelationTemplates:
    return RelationTemplates(f"The {name} of {{}} is", (paraphrases[0], paraphrases[1]))


# The relations of the embedded facts (editguard.edits.geonames); their objects are short names.
RELATIONS: Mapping[str, RelationTemplates] = MappingProxyType({
    "capital": _relation("capital", "The capital city of {} is", "{} has its capital in"),
    "continent": _relation("continent", "{} is located on the continent of", "{} is part of the continent of"),
    "country": _relation("country", "{} is located in the country of", "The country where {} is found is"),
    "currency": _relation("currency", "The currency used in {} is", "In {}, people pay with the"),
    "state": _relation("state", "{} is a city in the US state of", "The US state where {} lies is"),
})


def split_facts(facts: Iterable[Fact], seed: int = 0) -> tuple[list[Fact], list[Fact]]:
    """(edit pool, held-out pool), split by a stable hash of the subject: a subject lands in one pool only."""
    edit_pool: list[Fact] = []
    heldout: list[Fact] = []
    for fact in facts:
        (edit_pool if unit_hash(seed, fact.subject) % 2 == 0 else heldout).append(fact)
    return edit_pool, heldout


def fact_case_id(fact: Fact) -> str:
    digest = hashlib.sha1(fact.subject.encode()).hexdigest()[:8]
    return f"geo-{RELATIONS[fact.relation].slug}-{digest}"


def _index(facts: Iterable[Fact]) -> tuple[dict[tuple[str, str], Fact], dict[str, list[Fact]],
                                            dict[tuple[str, str], list[Fact]]]:
    by_key: dict[tuple[str, str], Fact] = {}
    for fact in facts:
        if fact.relation in RELATIONS:
            by_key.setdefault((fact.relation, fact.subject), fact)
    by_relation: dict[str, list[Fact]] = defaultdict(list)
    by_object: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for fact in sorted(by_key.values(), key=lambda f: (f.relation, f.subject)):
        by_relation[fact.relation].append(fact)
        by_object[(fact.relation, fact.object)].append(fact)
    return by_key, by_relation, by_object


def build_edits(facts: Iterable[Fact], seed: int = 0,
                         neighbours: Iterable[Fact] | None = None) -> list[EditRequest]:
    """Counterfactual edits for the facts of ``RELATIONS`` relations, sorted by case_id.

    ``target_new`` is another object of the same relation (one seen at least twice when there are
    such), neighbours are other subjects of the same relation, preferring the same true object,
    taken from ``neighbours`` (default: ``facts`` itself; the embedded set passes the held-out
    pool, so that no neighbour is itself edited later in a run).
    """
    by_key, own_relation, own_object = _index(facts)
    _, by_relation, by_object = (_index(neighbours) if neighbours is not None
                                 else (by_key, own_relation, own_object))
    counterfactuals: dict[str, list[str]] = {}
    for relation, group in own_relation.items():
        objects = sorted({f.object for f in group})
        frequent = [o for o in objects if len(own_object[(relation, o)]) >= 2]
        counterfactuals[relation] = frequent if len(frequent) >= 2 else objects

    requests = []
    for fact in by_key.values():
        templates = RELATIONS[fact.relation]
        case_id = fact_case_id(fact)
        rng = random.Random(f"{seed}:{case_id}")
        choices = [o for o in counterfactuals[fact.relation] if o.casefold() != fact.object.casefold()]
        if not choices:
            continue
        target_new = rng.choice(choices)  # drawn first: independent of where neighbours come from
        same = [f for f in by_object[(fact.relation, fact.object)] if f.subject != fact.subject]
        picks = rng.sample(same, min(N_NEIGHBOURS, len(same)))
        if len(picks) < N_NEIGHBOURS:
            rest = [f for f in by_relation[fact.relation] if f.object != fact.object and f.subject != fact.subject]
            picks += rng.sample(rest, min(N_NEIGHBOURS - len(picks), len(rest)))
        requests.append(EditRequest(
            case_id=case_id,
            prompt=templates.base,
            subject=fact.subject,
            target_new=target_new,
            target_true=fact.object,
            paraphrase_prompts=tuple(t.format(fact.subject) for t in templates.paraphrases),
            neighbourhood=tuple(Neighbour(templates.base.format(f.subject), f.object) for f in picks),
            relation=fact.relation,
        ))
    return sorted(requests, key=lambda r: r.case_id)
