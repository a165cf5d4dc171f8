"""BIG-Bench Hard with lm-evaluation-harness's 3-shot chain-of-thought prompts, in two sources:

  bbh          BBH itself (``SaylorTwift/bbh``, lm-eval's copy; 27 subtasks, test splits of 250
               items; hub data, or a local file with subtask, input, target): lm-eval's
               ``bbh_cot_fewshot`` task by task.
  bbh_parents  Offline, from a local copy of the BIG-bench sdist (PyPI no longer serves its
               files): items of the BIG-bench *parent* tasks of 11 BBH subtasks, put in BBH's
               format, after the same prompts. BBH is a 250-item sample of its parents, partly
               reworded and with shuffled options for some subtasks; the 11 here are those whose
               format is mechanical, checked byte for byte on lm-eval's exemplars, which are
               parent items themselves (all 33 inputs and targets match). Its scores are not BBH
               scores: other items (every parent item but the exemplars and repeats).

The prompt (lm-eval's assembly of the subtask's YAML): the subtask's description, then each of
its three exemplars as "Q: <input>\\nA: Let's think step by step.\\n<chain ending 'So the answer
is X.'>" joined by blank lines, a blank line, and "Q: <input>\\nA: Let's think step by step.\\n".
Greedy until "</s>", "Q" or a blank line, at most ``max_new_tokens`` (lm-eval's 1024). The
answer is what follows the first "the answer is " without its last character (lm-eval's regex
filter), "[invalid]" when there is none; exact match against the target, case and punctuation
kept. ``limit`` is spread evenly over the subtasks (seeded); ids are "<subtask>/<index>".
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import yaml

from editguard.backends.base import Generation
from editguard.benchmarks.base import Metric
from editguard.benchmarks.exact import exact_match
from editguard.benchmarks.generative import Generative, Prompted
from editguard.benchmarks.gsm8k import extract
from editguard.benchmarks.records import DataUnavailable, HubData, HubRecords, load_records
from editguard.benchmarks.selection import choose
from editguard.data.archives import BBH_SUBTASKS, BBH_TEMPLATE, BBH_YAML
from editguard.data.paths import bigbench_task_path, lmeval_task_path
from editguard.kinds import Kind
from editguard.suggest import did_you_mean

ANSWER = re.compile(r"(?<=the answer is )(.*)(?=.)")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen")


@dataclasses.dataclass(frozen=True)
class BbhSettings:
    limit: int = 100  # items scored (0 = all), spread evenly over the subtasks; seeded
    subtasks: tuple[str, ...] = ()  # e.g. ["navigate", "word_sorting"]; empty = all
    max_new_tokens: int = 1024  # lm-eval's max_gen_toks
    keep_text: bool = False  # keep every answer (baseline and edited) in results.json
    items: str = ""  # a file of item ids ("navigate/12") to score instead of the sample


@dataclasses.dataclass(frozen=True)
class BbhHubSettings(BbhSettings):
    path: str = ""  # a local JSON Lines file with subtask, input, target, instead of the hub


@functools.cache
def subtask_prompt(subtask: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(description, ((input, chain), ...)) of lm-eval's bbh cot_fewshot YAML for ``subtask``."""
    config = yaml.safe_load(lmeval_task_path(BBH_YAML.format(subtask)).read_text("utf-8"))
    shots = tuple((s["input"], s["target"]) for s in config["fewshot_config"]["samples"])
    return config["description"], shots


@functools.cache
def generation_settings() -> tuple[tuple[str, ...], int]:
    """(stop strings, max new tokens) of lm-eval's bbh cot_fewshot template."""
    template = yaml.safe_load(lmeval_task_path(BBH_TEMPLATE).read_text("utf-8"))
    kwargs = template["generation_kwargs"]
    return tuple(kwargs["until"]), int(kwargs["max_gen_toks"])


def question(text: str) -> str:
    return f"Q: {text}\nA: Let's think step by step.\n"


def prompt(subtask: str, text: str) -> str:
    description, shots = subtask_prompt(subtask)
    return description + "".join(question(q) + chain + "\n\n" for q, chain in shots) + question(text)


# -- BIG-bench parent items in BBH's format ------------------------------------------------------
Render = Callable[[dict[str, Any], dict[str, Any]], "tuple[str, str] | None"]


def _best(example: dict[str, Any]) -> str:
    return max(example["target_scores"], key=example["target_scores"].get)


def _lettered(text: str, example: dict[str, Any], words_only: bool = False) -> tuple[str, str] | None:
    """``text`` + "\\nOptions:\\n(A) ..." in the parent's choice order; target "(X)"."""
    choices = list(example["target_scores"])
    if words_only and any(c in NUMBER_WORDS for c in choices):  # BBH keeps "two", drops "2"
        choices = [c for c in choices if not c.isdigit()]
    if len(choices) > len(LETTERS):
        return None
    gold = next(i for i, c in enumerate(choices) if example["target_scores"][c] == 1)
    lines = "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
    return f"{text}\nOptions:\n{lines}", f"({LETTERS[gold]})"


def _listed(text: str, choices: Sequence[str], target: str) -> tuple[str, str]:
    return text + "\nOptions:\n" + "\n".join(f"- {c}" for c in choices), target


PARENTS: dict[str, tuple[str, Render]] = {  # BBH subtask -> (BIG-bench task, render)
    "causal_judgement": ("causal_judgment", lambda task, e: _listed(
        f"{task['task_prefix'].strip()}\n{e['input']}", ("Yes", "No"), _best(e))),
    "disambiguation_qa": ("disambiguation_qa", lambda task, e: _lettered(
        task["task_prefix"].rstrip("\n") + task["example_input_prefix"] + e["input"], e)),
    "dyck_languages": ("dyck_languages", lambda task, e: (
        f"{task['task_prefix'].strip()} Input: {e['input']}", _best(e))),
    "formal_fallacies": ("formal_fallacies_syllogisms_negation", lambda task, e: _listed(
        e["input"].replace("\n Is the argument", "\nIs the argument"), ("valid", "invalid"),
        _best(e))),
    "geometric_shapes": ("geometric_shapes", lambda task, e: _lettered(e["input"].rstrip(), e)),
    "navigate": ("navigate", lambda task, e: _listed(
        f"{task['task_prefix']} {e['input']}", ("Yes", "No"),
        {"True": "Yes", "False": "No"}[_best(e)])),
    "penguins_in_a_table": ("penguins_in_a_table", lambda task, e: _lettered(
        task["task_prefix"].replace("\n", " ") + " " + e["input"].lstrip("\n"), e)),
    "reasoning_about_colored_objects": ("reasoning_about_colored_objects",
                                        lambda task, e: _lettered(e["input"], e, words_only=True)),
    "salient_translation_error_detection": ("salient_translation_error_detection",
                                            lambda task, e: _lettered(
        task["task_prefix"].replace("\n", " ") + " " + e["input"].rstrip(), e)),
    "sports_understanding": ("sports_understanding", lambda task, e: (
        f'Is the following sentence plausible? "{e["input"]}."',
        {"plausible": "yes", "implausible": "no"}[_best(e)])),
    "word_sorting": ("word_sorting", lambda task, e: (
        f"{task['task_prefix']} List: {e['input']}", e["target"])),
}


@functools.cache
def parent_items(subtask: str) -> tuple[tuple[str, str], ...]:
    """(input, target) of every item of ``subtask``'s parent task, in BBH's format, in the
    parent's order; items whose input is one of the subtask's exemplars, repeated inputs and
    items BBH's format cannot hold (more than 26 options) are left out."""
    parent, render = PARENTS[subtask]
    task = json.loads(bigbench_task_path(parent).read_text("utf-8"))
    exemplars = {q for q, _ in subtask_prompt(subtask)[1]}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for example in task["examples"]:
        rendered = render(task, example)
        if rendered is None or rendered[0] in exemplars or rendered[0] in seen:
            continue
        seen.add(rendered[0])
        out.append(rendered)
    return tuple(out)


class BbhBase(Generative):
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("exact_match", primary=True),)
    known: ClassVar[tuple[str, ...]]

    def check(self) -> None:
        super().check()
        opts = self.options
        unknown = [s for s in opts.subtasks if s not in self.known]
        if unknown:
            hint = did_you_mean(unknown[0], self.known, " (did you mean {!r}?)")
            raise ValueError(f"{self.name} subtasks: {unknown[0]!r} is not one of its subtasks"
                             f"{hint}; accepted: {', '.join(self.known)}")
        if opts.max_new_tokens < 1:
            raise ValueError(f"{self.name} max_new_tokens {opts.max_new_tokens} must be at least "
                             f"1 (lm-eval uses {generation_settings()[1]})")
        for subtask in self.subtasks():  # the installed prompts (and data), before any model
            subtask_prompt(subtask)

    def subtasks(self) -> tuple[str, ...]:
        return tuple(self.options.subtasks) or self.known

    def pool(self) -> dict[str, list[tuple[str, str]]]:
        """Per subtask, (input, target) of every item."""
        raise NotImplementedError

    def items(self) -> list[Prompted]:
        opts = self.options
        pools = self.pool()
        names = self.subtasks()
        every = [(f"{s}/{i}", s, i) for s in names for i in range(len(pools[s]))]
        if opts.items:
            chosen = self.select(every, lambda e: e[0])
        elif opts.limit == 0:
            chosen = every
        else:  # ``limit`` spread evenly: subtask k gets limit // n, the first limit % n one more
            quotas = {s: opts.limit // len(names) + (k < opts.limit % len(names))
                      for k, s in enumerate(names)}
            picked = {(s, i) for s in names if quotas[s]
                      for i in choose(len(pools[s]), quotas[s], self.seed)}
            chosen = [e for e in every if (e[1], e[2]) in picked]
        # prompts only for the chosen items: a parent task holds up to 14,197 of them
        return [Prompted(key, prompt(s, pools[s][i][0]), (pools[s][i][1],))
                for key, s, i in chosen]

    def request(self, item: Prompted) -> Generation:
        until, _ = generation_settings()
        return Generation(item.context, self.options.max_new_tokens, until)

    def score(self, item: Prompted, response: str) -> dict[str, float]:
        answer = extract(ANSWER, response, last=False)
        return {"exact_match": exact_match(answer, item.references, ignore_case=False,
                                           ignore_punctuation=False)}

    def config(self) -> dict[str, Any]:
        until, _ = generation_settings()
        return {**super().config(), "prompts": f"lm-eval 0.4.13 {BBH_YAML.format('<subtask>')}",
                "until": list(until), "subtasks": list(self.subtasks())}


class BbhParents(BbhBase):
    name: ClassVar[str] = "bbh_parents"
    version: ClassVar[str] = "1"
    settings: ClassVar[type] = BbhSettings
    known: ClassVar[tuple[str, ...]] = tuple(sorted(PARENTS))

    def check(self) -> None:
        super().check()
        for subtask in self.subtasks():
            bigbench_task_path(PARENTS[subtask][0])

    def pool(self) -> dict[str, list[tuple[str, str]]]:
        return {s: list(parent_items(s)) for s in self.subtasks()}

    def config(self) -> dict[str, Any]:
        return {**super().config(),
                "data": {s: f"BIG-bench 1.0.0 {PARENTS[s][0]}" for s in self.subtasks()}}


class Bbh(HubRecords, BbhBase):
    name: ClassVar[str] = "bbh"
    version: ClassVar[str] = "1"
    settings: ClassVar[type] = BbhHubSettings
    known: ClassVar[tuple[str, ...]] = BBH_SUBTASKS
    # one hub config per subtask; the local file holds all of them, each record naming its own
    data: ClassVar[HubData] = HubData("SaylorTwift/bbh", "<subtask>", "test",
                                      ("subtask", "input", "target"))

    def check(self) -> None:
        try:
            super().check()
        except DataUnavailable as err:
            raise DataUnavailable(f"{err} (bbh_parents scores the BIG-bench parent tasks of 11 "
                                  "subtasks in BBH's format, given a local copy of the BIG-bench "
                                  "sdist)") from None

    def pool(self) -> dict[str, list[tuple[str, str]]]:
        if self.options.path:
            records = [r for _, r in self.records()]
        else:  # one hub config per subtask, whose records do not name it
            records = [{**r, "subtask": s} for s in self.subtasks() for r in load_records(
                self.name, HubData(self.data.hub_id, s, self.data.split, ("input", "target")),
                "")]
        out: dict[str, list[tuple[str, str]]] = {s: [] for s in self.subtasks()}
        for r in records:
            if r["subtask"] in out:
                out[r["subtask"]].append((r["input"], r["target"]))
        return out

