"""Speed of the HF backend against naive scoring, measured in the same run.

Naive = what a straightforward harness does: one full forward pass per (context, continuation)
request with the vocabulary projection at every position. The backend shares inputs between
requests, reuses prefix-covered passes, batches by length and projects only where scored.

    .venv/bin/python -m perf.scoring [--model smollm2-135m] [--limit 40]

Prints seconds for each and the speed-up ratio; also checks that both give the same scores.
Then the backend's model FLOP rate against this machine's dense matmul rate, both measured in
the same run: the FLOPs the backend's forward passes did (2 x non-embedding parameters per token
run, attention scores and mixing per layer, the vocabulary projection where applied, padding
included) over its seconds, and a square fp32 matmul's rate at the same thread count.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

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


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a (size x size) @ (size x size) fp32 matmul, best of ``repeats``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _time(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class FlopCounter:
    """FLOPs of a causal LM's forward passes, from hooks on its body and its output head."""

    def __init__(self, model: Any) -> None:
        config = model.config
        self.layers = int(config.num_hidden_layers)
        self.hidden = int(config.hidden_size)
        self.vocab = int(config.vocab_size)
        head = model.get_output_embeddings()
        embeddings = {id(p) for p in model.get_input_embeddings().parameters()}
        embeddings |= {id(p) for p in head.parameters()}
        self.body_params = sum(p.numel() for p in model.base_model.parameters()
                               if id(p) not in embeddings)
        self.flops = 0.0
        self._handles = [
            model.base_model.register_forward_pre_hook(self._body, with_kwargs=True),
            head.register_forward_pre_hook(self._head)]

    def _body(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        batch, length = ids.shape
        past = kwargs.get("past_key_values")
        seen = past.get_seq_length() if past is not None else 0
        self.flops += 2 * self.body_params * batch * length
        # QK^T and the attention-weighted sum: 2 x 2 x T_q x T_k x hidden per layer
        self.flops += 4 * self.layers * batch * length * (length + seen) * self.hidden

    def _head(self, module: Any, args: tuple[Any, ...]) -> None:
        rows = args[0].numel() // self.hidden
        self.flops += 2 * rows * self.hidden * self.vocab

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


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
    rate = matmul_rate()
    counter = FlopCounter(lm.model)
    start = time.perf_counter()
    fast = [r.logprob for r in backend.loglikelihood(requests)]
    t_fast = time.perf_counter() - start
    counter.close()
    start = time.perf_counter()
    slow = naive(lm.model, lm.tokenizer, requests)
    t_slow = time.perf_counter() - start
    worst = max(abs(a - b) for a, b in zip(fast, slow))
    print(f"{len(requests)} requests (MMLU {args.limit} x 4 letters + BBQ {args.limit} "
          f"questions' choices) on {args.model}, {torch.get_num_threads()} threads")
    print(f"naive one-pass-per-request: {t_slow:7.2f} s")
    print(f"editguard HF backend:       {t_fast:7.2f} s")
    print(f"speed-up: {t_slow / t_fast:.2f}x   (max |logprob difference| {worst:.2e})")
    model_rate = counter.flops / t_fast
    print(f"editguard model FLOP rate {model_rate / 1e9:.1f} GFLOP/s ({counter.flops / 1e9:.0f} "
          f"GFLOP in {t_fast:.2f} s); dense fp32 matmul {rate / 1e9:.1f} GFLOP/s; fraction "
          f"{model_rate / rate:.2f}")


if __name__ == "__main__":
    main()
