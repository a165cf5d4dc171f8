"""Speed of batched generation and of the shared-prefix KV cache, measured in the same run.

    .venv/bin/python -m perf.generation [--model smollm2-135m] [--requests 32] [--batch 16]
                                        [--mmlu 40]

1. Greedy generation of the closedbook benchmark's 5-shot prompts: batched (``--batch`` rows,
   KV cache, shared prefix) against one request at a time with no prefix reuse. Checks the
   texts are identical.
2. MMLU 5-shot log-likelihoods of questions from two subjects: the shared-prefix cache against
   the same batched scoring that recomputes each prompt whole. Checks the log-likelihoods agree to 1e-4.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

import torch

from editguard.backends.base import Generation
from editguard.backends.hf import HFBackend
from editguard.benchmarks.mmlu import LETTERS, Mmlu
from editguard.benchmarks.registry import create
from editguard.data.paths import editguard_home
from editguard.models.loading import load
from editguard.models.spec import ModelSpec

T = TypeVar("T")
NO_PREFIX = 10**9
SUBJECTS = ("high_school_psychology", "miscellaneous")  # a min_prefix no prompt reaches: every prompt is run whole


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--mmlu", type=int, default=40)
    args = parser.parse_args()
    lm = load(ModelSpec(args.model), editguard_home())
    print(f"{args.model} on {torch.get_num_threads()} threads")

    bench = create("closedbook", {"limit": args.requests})
    requests = [Generation(i.context, bench.max_new_tokens, bench.until) for i in bench.items()]
    batched = HFBackend(lm.model, lm.tokenizer, max_batch=args.batch)
    single = HFBackend(lm.model, lm.tokenizer, min_prefix=NO_PREFIX)
    fast, t_fast = timed(lambda: batched.generate(requests))
    slow, t_slow = timed(lambda: [single.generate([r])[0] for r in requests])
    print(f"generation, {len(requests)} closedbook 5-shot prompts, <= {bench.max_new_tokens} "
          f"new tokens: one at a time {t_slow:.2f} s, batch {args.batch} + prefix cache "
          f"{t_fast:.2f} s, ratio {t_slow / t_fast:.2f}x, identical texts: {fast == slow}")

    # Two subjects: a full MMLU run scores ~240 questions per subject, all after the same 5-shot
    # prefix; a small sample over all 57 subjects would have almost nothing to share.
    mmlu = Mmlu({"limit": args.mmlu, "num_fewshot": 5, "subjects": SUBJECTS})
    ll = [(c.context, x) for c in mmlu.items() for x in (f" {letter}" for letter in LETTERS)]
    cached = HFBackend(lm.model, lm.tokenizer)
    whole = HFBackend(lm.model, lm.tokenizer, min_prefix=NO_PREFIX)
    a, t_cached = timed(lambda: cached.loglikelihood(ll))
    b, t_whole = timed(lambda: whole.loglikelihood(ll))
    worst = max(abs(x.logprob - y.logprob) for x, y in zip(a, b))
    print(f"MMLU 5-shot, {args.mmlu} questions of {', '.join(SUBJECTS)}: whole prompts {t_whole:.2f} s, shared-prefix "
          f"cache {t_cached:.2f} s, ratio {t_whole / t_cached:.2f}x "
          f"(max |logprob difference| {worst:.1e})")


if __name__ == "__main__":
    main()
