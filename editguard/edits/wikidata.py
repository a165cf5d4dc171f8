"""The embedded edit set: counterfactual rewrites of BIG-bench ``qa_wikidata`` facts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from editguard.data.paths import bigbench_task_path
from editguard.edits.request import EditRequest, Neighbour
from editguard.edits.sampling import unit_hash

N_NEIGHBOURS = 3


@dataclasses.dataclass(frozen=True)
class Fact:
    """A Wikidata triple as qa_wikidata states it: "The <relation> of <subject> is" -> object."""

    relation: str
    subject: str
    object: str

    @property
    def prompt(self) -> str:
        return f"The {self.relation} of {self.subject} is"


@dataclasses.dataclass(frozen=True)
class RelationTemplates:
    """How a relation is asked: the qa_wikidata template and two paraphrases, each ending before the object."""

    base: str
    paraphrases: tuple[str, str]

    @property
    def slug(self) -> str:
        return self.base.removeprefix("The ").removesuffix(" of {} is").replace(" ", "-")


def _relation(name: str, *paraphrases: str) -> RelationTemplates:
    return RelationTemplates(f"The {name} of {{}} is", (paraphrases[0], paraphrases[1]))


# Single-valued relations whose objects are short names (countries, languages, cities, ...).
RELATIONS: Mapping[str, RelationTemplates] = MappingProxyType({
    "country": _relation("country", "{} is located in the country of", "The country where {} is found is"),
    "country of citizenship": _relation("country of citizenship", "{} is a citizen of",
                                        "{} holds the citizenship of"),
    "native language": _relation("native language", "The mother tongue of {} is", "{} grew up speaking"),
    "official language": _relation("official language", "The official language spoken in {} is",
                                   "In {}, the official language is"),
    "religion": _relation("religion", "{} is a follower of", "The religious affiliation of {} is"),
    "instrument": _relation("instrument", "{} plays the", "The musical instrument played by {} is"),
    "capital": _relation("capital", "The capital city of {} is", "{} has its capital in"),
    "continent": _relation("continent", "{} is located on the continent of", "{} is part of the continent of"),
    "genre": _relation("genre", "{} is known for the genre of", "The genre associated with {} is"),
    "headquarters location": _relation("headquarters location", "{} is headquartered in",
                                       "The headquarters of {} are located in"),
})

# qa_wikidata relation names that themselves contain " of " (checked before splitting at the first " of ").
COMPOUND_RELATIONS = (
    "office held by head of government", "office held by head of state", "basic form of government",
    "country of citizenship", "color of the flag", "place of publication", "place of birth",
    "place of death", "month of the year",
)


def parse_wikidata_prompt(text: str) -> tuple[str, str] | None:
    """(relation, subject) of "The <relation> of <subject> is", or None for other phrasings."""
    text = text.strip()
    if not (text.startswith("The ") and text.endswith(" is")):
        return None
    body = text[len("The "):-len(" is")]
    for relation in COMPOUND_RELATIONS:
        if body.startswith(relation + " of "):
            subject = body[len(relation) + len(" of "):]
            return (relation, subject) if subject.strip() else None
    relation, sep, subject = body.partition(" of ")
    if not sep or not relation.strip() or not subject.strip():
        return None
    return relation, subject


def read_wikidata_facts(path: Path | str) -> list[Fact]:
    """The single-answer facts of qa_wikidata's ``task.json``, unique, in file order."""
    task = json.loads(Path(path).read_bytes())
    facts: dict[Fact, None] = {}
    for example in task["examples"]:
        target = example.get("target")
        parsed = parse_wikidata_prompt(example.get("input", ""))
        if not isinstance(target, str) or not target.strip() or parsed is None:
            continue
        facts.setdefault(Fact(parsed[0], parsed[1], target.strip()), None)
    return list(facts)


def split_facts(facts: Iterable[Fact], seed: int = 0) -> tuple[list[Fact], list[Fact]]:
    """(edit pool, held-out pool), split by a stable hash of the subject: a subject lands in one pool only."""
    edit_pool: list[Fact] = []
    heldout: list[Fact] = []
    for fact in facts:
        (edit_pool if unit_hash(seed, fact.subject) % 2 == 0 else heldout).append(fact)
    return edit_pool, heldout


def wikidata_case_id(fact: Fact) -> str:
    digest = hashlib.sha1(fact.subject.encode()).hexdigest()[:8]
    return f"wd-{RELATIONS[fact.relation].slug}-{digest}"


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


def build_wikidata_edits(facts: Iterable[Fact], seed: int = 0,
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
        case_id = wikidata_case_id(fact)
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


def _wikidata_pools(seed: int) -> tuple[list[Fact], list[Fact]]:
    return split_facts(read_wikidata_facts(bigbench_task_path("qa_wikidata")), seed)


def heldout_facts(seed: int = 0) -> list[Fact]:
    """qa_wikidata facts whose subjects no edit of ``embedded_edits(seed)`` touches (all relations)."""
    return _wikidata_pools(seed)[1]


def embedded_edits(seed: int = 0) -> list[EditRequest]:
    """The default edit set: counterfactual rewrites of the qa_wikidata edit pool for ``seed``,
    with neighbourhood prompts from the held-out pool (never edited)."""
    edit_pool, heldout = _wikidata_pools(seed)
    return build_wikidata_edits(edit_pool, seed, neighbours=heldout)
