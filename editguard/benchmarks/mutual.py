"""MuTual dialogue reasoning, scored as lm-evaluation-harness's ``mutual`` task.

Each item is a dialogue (``article``, speakers marked "m :" / "f :") and four candidate next
turns; the context is the dialogue and each candidate is scored after a space by summed
log-likelihood. Text is detokenised as lm-eval's ``process_docs`` does (" n't" -> "n't",
" ." -> ".", ...). Metrics, as lm-eval's ``process_results``: r1 (``r@1``: the gold turn ranks
first), r2 (``r@2``: first or second) and mrr (1 / the gold turn's rank). Data:
``EleutherAI/mutual`` (config mutual, validation: 886 dialogues; the test split has no answers)
or a local file with article, options, answers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from editguard.benchmarks.base import Choice, Metric, MultipleChoice
from editguard.benchmarks.records import HubData, HubRecords
from editguard.kinds import Kind

ANSWERS = ("A", "B", "C", "D")
_DETOKENISE = ((" '", "'"), (" \n", "\n"), ("\n ", "\n"), (" n't", "n't"), ("`` ", '"'),
               ("''", '"'), (" :", ":"), (" ;", ";"), (" !", "!"), (" ?", "?"), (" ,", ","),
               (" .", "."))


@dataclasses.dataclass(frozen=True)
class MutualSettings:
    limit: int = 100  # dialogues scored (0 = all 886); a seeded, fixed subset
    path: str = ""  # a local JSON Lines file with article, options, answers, instead of the hub
    items: str = ""  # a file of item ids ("validation/12") to score instead of the sample


def detokenise(text: str) -> str:
    """lm-eval's ``_detokenize`` for MuTual, replacement by replacement, in its order."""
    for old, new in _DETOKENISE:
        text = text.replace(old, new)
    return text


def ranks(scores: Sequence[float], gold: int) -> dict[str, float]:
    """r1, r2 and mrr of the gold choice among ``scores``, as lm-eval computes them (ties rank
    the gold turn at the first of its equals); NaN for all when a score is not finite."""
    if any(not math.isfinite(s) for s in scores):
        return {"r1": math.nan, "r2": math.nan, "mrr": math.nan}
    rank = sorted(scores, reverse=True).index(scores[gold])  # 0 = best
    first = float(max(range(len(scores)), key=lambda i: scores[i]) == gold)
    return {"r1": first, "r2": float(rank == 1) + first, "mrr": 1.0 / (rank + 1)}


class Mutual(HubRecords, MultipleChoice):
    name: ClassVar[str] = "mutual"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("r1", primary=True), Metric("r2"),
                                             Metric("mrr"))
    settings: ClassVar[type] = MutualSettings
    data: ClassVar[HubData] = HubData("EleutherAI/mutual", "mutual", "validation",
                                      ("article", "options", "answers"))

    def items(self) -> list[Choice]:
        pool = []
        for i, r in self.records():
            if r["answers"] not in ANSWERS or len(r["options"]) != len(ANSWERS):
                raise ValueError(f"mutual: record {i} has answers {r['answers']!r} and "
                                 f"{len(r['options'])} options; expected one of "
                                 f"{', '.join(ANSWERS)} and 4 options")
            pool.append(Choice(i, detokenise(r["article"]),
                               tuple(" " + detokenise(o) for o in r["options"]),
                               ANSWERS.index(r["answers"])))
        return self.select(pool, lambda c: c.id)

    def score_choices(self, scores: Sequence[float], choice: Choice) -> dict[str, float]:
        return ranks(scores, choice.answer)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "lm_eval_task": "mutual (metrics r@1, r@2, mrr)"}
