"""CoNLL-2003 named entities by generation, as paper (b) ("Model Editing Can Hurt General
Abilities of LLMs") prompts it: for each sentence and each of its four entity types,
"Please identify <Type> Entity from the given text. Text: <sentence> Entity:", greedy, 10 new
tokens (Person, Location, Organization, Miscellaneous; the sentence is the tokens joined by
spaces with "," and "." attached). Each answer is split at commas, semicolons and line breaks;
every piece found in the sentence's tokens (first untagged occurrence) is tagged as an entity of
that type (pieces not in the sentence cannot be placed and are dropped). Scored per sentence with
``seqeval``'s entity-level F1 of those tags against the gold ones (a sentence with no entities on
either side scores 1); ``entity_f1`` is the mean over sentences, not corpus micro-F1.
Data: ``eriktks/conll2003`` (test, 3,453 sentences; tags as class ids) or a local file with
tokens, ner_tags (ids or strings such as "B-PER").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from editguard.backends.base import Generation
from editguard.benchmarks.base import Metric
from editguard.benchmarks.generative import Generative, Prompted
from editguard.benchmarks.records import HubData, HubRecords, require
from editguard.kinds import Kind

TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
TYPES = (("PER", "Person"), ("LOC", "Location"), ("ORG", "Organization"),
         ("MISC", "Miscellaneous"))
_PIECES = re.compile(r"[,;\n]")


@dataclasses.dataclass(frozen=True)
class NerSettings:
    limit: int = 100  # sentences scored (0 = all); a seeded, fixed subset
    path: str = ""  # a local JSON Lines file with tokens, ner_tags, instead of the hub
    keep_text: bool = False  # keep every answer (baseline and edited) in results.json
    items: str = ""  # a file of item ids ("test/12") to score instead of the sample


@dataclasses.dataclass(frozen=True)
class Sentence(Prompted):
    """A sentence (``context``: its tokens joined by spaces, "," and "." attached) and its gold
    tags; no reference strings."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]


def joined(tokens: Sequence[str]) -> str:
    return "".join(t if t in (",", ".") else " " + t for t in tokens)[1:]


def prompt(sentence: Sentence, entity_type: str) -> str:
    return (f"Please identify {entity_type} Entity from the given text. Text: {sentence.context} "
            "Entity:")


def predicted_tags(tokens: Sequence[str], answers: dict[str, str]) -> list[str]:
    """BIO tags from each type's answer: every piece found in ``tokens`` is tagged."""
    tags = ["O"] * len(tokens)
    for label, answer in answers.items():
        for piece in _PIECES.split(answer):
            words = piece.split()
            n = len(words)
            if not n:
                continue
            for start in range(len(tokens) - n + 1):
                if list(tokens[start:start + n]) == words and all(
                        t == "O" for t in tags[start:start + n]):
                    tags[start:start + n] = [f"B-{label}"] + [f"I-{label}"] * (n - 1)
                    break
    return tags


def sentence_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    if all(t == "O" for t in gold) and all(t == "O" for t in predicted):
        return 1.0
    from seqeval.metrics import f1_score  # the hub extra

    return float(f1_score([list(gold)], [list(predicted)], zero_division=0))


class Conll2003(HubRecords, Generative[Sentence]):
    name: ClassVar[str] = "conll2003"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("entity_f1", primary=True),)
    settings: ClassVar[type] = NerSettings
    until: ClassVar[tuple[str, ...]] = ()
    max_new_tokens: ClassVar[int] = 10
    data: ClassVar[HubData] = HubData("eriktks/conll2003", None, "test", ("tokens", "ner_tags"))

    def check(self) -> None:
        require("seqeval", self.name)
        super().check()

    def items(self) -> list[Sentence]:
        pool = []
        for i, r in self.records():
            tags = tuple(TAGS[t] if isinstance(t, int) else str(t) for t in r["ner_tags"])
            if len(tags) != len(r["tokens"]):
                raise ValueError(f"conll2003: record {i} has {len(r['tokens'])} tokens and "
                                 f"{len(tags)} tags; each token needs one tag")
            if r["tokens"]:
                pool.append(Sentence(i, joined(r["tokens"]), (), tuple(r["tokens"]), tags))
        return self.select(pool, lambda s: s.id)

    def requests(self, item: Sentence) -> list[Generation]:
        return [Generation(prompt(item, name), self.max_new_tokens, self.until)
                for _, name in TYPES]

    def score_responses(self, item: Sentence, responses: Sequence[str]) -> dict[str, float]:
        answers = {label: text for (label, _), text in zip(TYPES, responses, strict=True)}
        return {"entity_f1": sentence_f1(item.tags, predicted_tags(item.tokens, answers))}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "metric": "seqeval entity F1 per sentence, mean"}
