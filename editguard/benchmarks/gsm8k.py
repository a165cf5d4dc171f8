"""GSM8K grade-school maths, generated and scored as lm-evaluation-harness's two tasks:

  variant "cot"   (lm-eval ``gsm8k_cot``, the default): ``num_fewshot`` (8) worked examples,
                  "Q: <q>\\nA: <reasoning> The answer is N." joined by blank lines, then
                  "Q: <q>\\nA:"; the exemplars are read from lm-eval 0.4.13's own
                  ``gsm8k-cot.yaml`` (installed by scripts/setup.sh), so prompts match its
                  byte for byte. strict: "The answer is (N)."; flexible: the last number.
  variant "plain" (lm-eval ``gsm8k``, 0-shot): "Question: <q>\\nAnswer:"; strict: "#### N";
                  flexible: the last number.

Greedy until "Q:" / "Question:", "</s>" or "<|im_end|>" (and the end-of-sequence token), at most
256 new tokens. exact_match after removing ",", "$", a trailing "." and everything up to
"#### ", ignoring case, against the number after the reference's "####"; no match scores 0.
Data: ``openai/gsm8k`` (main, test; 1,319 problems) or a local file with question, answer.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, ClassVar, Literal

import yaml

from editguard.backends.base import Generation
from editguard.benchmarks.base import Metric
from editguard.benchmarks.exact import exact_match
from editguard.benchmarks.generative import Generative, Prompted
from editguard.benchmarks.records import HubData, HubRecords
from editguard.data.paths import lmeval_task_path
from editguard.kinds import Kind

COT_YAML = "lm_eval/tasks/gsm8k/gsm8k-cot.yaml"
IGNORE = (",", r"\$", "(?s).*#### ", r"\.$")
STRICT = {"cot": re.compile(r"The answer is (\-?[0-9\.\,]+)."),
          "plain": re.compile(r"#### (\-?[0-9\.\,]+)")}
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
INVALID = "[invalid]"


@dataclasses.dataclass(frozen=True)
class Gsm8kSettings:
    limit: int = 100  # problems scored (0 = all 1,319); a seeded, fixed subset
    variant: Literal["cot", "plain"] = "cot"
    num_fewshot: int = 8  # cot: 0 .. 8 of lm-eval's exemplars; plain: 0 only
    path: str = ""  # a local JSON Lines file with question, answer, instead of the hub
    keep_text: bool = False  # keep every answer (baseline and edited) in results.json
    items: str = ""  # a file of item ids ("test/12") to score instead of the sample


@functools.cache
def cot_exemplars() -> tuple[tuple[str, str], ...]:
    """(question, target) of lm-eval's gsm8k_cot few-shot samples, in order."""
    config = yaml.safe_load(lmeval_task_path(COT_YAML).read_text(encoding="utf-8"))
    return tuple((s["question"], s["target"]) for s in config["fewshot_config"]["samples"])


def extract(pattern: re.Pattern[str], response: str, last: bool) -> str:
    """lm-eval's regex filter: the first (or last) match, its first non-empty group."""
    found = pattern.findall(response)
    if not found:
        return INVALID
    match = found[-1 if last else 0]
    if isinstance(match, tuple):
        match = next((m for m in match if m), INVALID)
    return match.strip()


def reference(answer: str) -> str:
    return answer.split("####")[-1].strip()


class Gsm8k(HubRecords, Generative):
    name: ClassVar[str] = "gsm8k"
    version: ClassVar[str] = "1"
    kind: ClassVar[Kind] = "capability"
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("strict", primary=True), Metric("flexible"))
    settings: ClassVar[type] = Gsm8kSettings
    max_new_tokens: ClassVar[int] = 256
    data: ClassVar[HubData] = HubData("openai/gsm8k", "main", "test", ("question", "answer"))

    def check(self) -> None:
        opts: Gsm8kSettings = self.options
        if opts.variant == "plain" and opts.num_fewshot:
            raise ValueError(f"gsm8k variant 'plain' is 0-shot here (lm-eval samples its shots "
                             f"from the train split at random), got num_fewshot "
                             f"{opts.num_fewshot}; pass --bench-opt gsm8k.num_fewshot=0, or "
                             "variant=cot for 0 .. 8 fixed exemplars")
        if opts.variant == "cot":
            shots = cot_exemplars()
            if opts.num_fewshot > len(shots):
                raise ValueError(f"gsm8k num_fewshot {opts.num_fewshot}: lm-eval's gsm8k_cot "
                                 f"has {len(shots)} exemplars; pass --bench-opt "
                                 f"gsm8k.num_fewshot={len(shots)} or fewer")
        super().check()  # the options first: they are wrong whatever the data

    def prompt(self, question: str) -> str:
        opts: Gsm8kSettings = self.options
        if opts.variant == "plain":
            return f"Question: {question}\nAnswer:"
        shots = "".join(f"Q: {q}\nA: {t}\n\n" for q, t in cot_exemplars()[: opts.num_fewshot])
        return f"{shots}Q: {question}\nA:"

    def items(self) -> list[Prompted]:
        self.check()
        pool = [Prompted(i, self.prompt(r["question"]), (reference(r["answer"]),))
                for i, r in self.records()]
        return self.select(pool, lambda p: p.id)

    def request(self, item: Prompted) -> Generation:
        head = "Q:" if self.options.variant == "cot" else "Question:"
        return Generation(item.context, self.max_new_tokens, (head, "</s>", "<|im_end|>"))

    def score(self, item: Prompted, response: str) -> dict[str, float]:
        variant = self.options.variant
        strict = extract(STRICT[variant], response, last=False)
        flexible = extract(FLEXIBLE, response, last=True)
        return {name: exact_match(got, item.references, ignore=IGNORE, ignore_punctuation=False)
                for name, got in (("strict", strict), ("flexible", flexible))}

    def config(self) -> dict[str, Any]:
        out = super().config()
        if self.options.variant == "cot":
            out["exemplars"] = f"lm-eval 0.4.13 {COT_YAML}"
        return out
