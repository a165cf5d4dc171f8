"""Speed of the HF backend against naive scoring, measured in the same run.

Naive = what a straightforward harness does: one full forward pass per (context, continuation)
request with the vocabulary projection at every position. The backend shares inputs between
requests, reuses prefix-covered passes, batches by length and projects only where scored.

    .venv/bin/python -m perf.scoring [--model smollm2-135m] [--limit 40]

Prints seconds for each and the speed-up ratio; also checks that both give the same scores.
"""

from __future__ import annotations

import argparse
import time

import torch

from editguard.backends.hf import HFBackend
from editguard.benchmarks.mmlu import LETTERS, Mmlu
from editguard.benchmarks.bbq import Bbq
from editguard.data.paths import editguard_home
from editguard.models.loading import load
from editguard.models.spec import ModelSpec


@torch.no_grad()
def naive(model, tokenizer, requests) -> list[float]:
    out = []
    for context, continuation in requests:
        ctx = tokenizer(context)["input_ids"]
        whole = tokenizer(context + continuation)["input_ids"]
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), dim=-1)
        out.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(whole[len(ctx):])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()
    lm = load(ModelSpec(args.model), editguard_home())
    mmlu = Mmlu({"limit": args.limit})
    questions, shots = mmlu._questions()
    requests = [(mmlu.prompt(q, []), f" {letter}") for q in questions for letter in LETTERS]
    requests += [(item.context, c) for item in Bbq({"limit": args.limit}).items()
                 for c in item.continuations]
    backend = HFBackend(lm.model, lm.tokenizer)
    start = time.perf_counter()
    fast = [r.logprob for r in backend.loglikelihood(requests)]
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    slow = naive(lm.model, lm.tokenizer, requests)
    t_slow = time.perf_counter() - start
    worst = max(abs(a - b) for a, b in zip(fast, slow))
    print(f"{len(requests)} requests (MMLU {args.limit} x 4 letters + BBQ {args.limit} "
          f"questions' choices) on {args.model}, {torch.get_num_threads()} threads")
    print(f"naive one-pass-per-request: {t_slow:7.2f} s")
    print(f"editguard HF backend:       {t_fast:7.2f} s")
    print(f"speed-up: {t_slow / t_fast:.2f}x   (max |logprob difference| {worst:.2e})")


if __name__ == "__main__":
    main()
