"""In-memory transformers backend: scores the live (possibly edited) model object.

Speed comes from three things: identical model inputs are run once (the four answer letters of
an MMLU question share one forward pass: the input is everything but the last token), an input
that is a prefix of a longer one reuses the longer one's pass, and the vocabulary projection is
applied only at the positions a score needs.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.backends.base import Generation, Loglikelihood
from editguard.lm.device import model_device, model_dtype
from editguard.lm.forward import final_hidden, generate, logits_from_hidden
from editguard.lm.tokens import decode, pad_id, right_pad


@dataclasses.dataclass(frozen=True)
class _Scored:
    input_ids: tuple[int, ...]  # what the model reads: context + continuation[:-1]
    first: int  # position whose logits predict the continuation's first token
    targets: tuple[int, ...]


class HFBackend:
    name = "hf"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 batch_tokens: int = 8192, max_batch: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        # told (requests done, requests in the call) after each forward batch, when set
        self.progress: Callable[[int, int], None] | None = None
        self.nonfinite = 0  # log-likelihoods that came out NaN or infinite: a collapsed model
        self.max_length = int(getattr(model.config, "max_position_embeddings", 0) or
                              getattr(model.config, "n_positions", 0) or 2048)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device_type": model_device(self.model).type,
                "dtype": str(model_dtype(self.model))}

    # -- log-likelihood -------------------------------------------------------------------
    def _encode(self, context: str, continuation: str) -> _Scored:
        # Trailing spaces of the context belong to the continuation (as in lm-eval).
        stripped = context.rstrip(" ")
        continuation = context[len(stripped):] + continuation
        context_ids = self.tokenizer(stripped)["input_ids"]
        whole = self.tokenizer(stripped + continuation)["input_ids"]
        if whole[: len(context_ids)] == context_ids and len(whole) > len(context_ids):
            targets = whole[len(context_ids):]
        else:  # tokenisation merged across the boundary: encode the parts separately
            targets = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
            whole = context_ids + targets
        if not targets:
            raise ValueError(f"empty continuation after context {context[-40:]!r}")
        if not context_ids:
            raise ValueError(f"empty context for continuation {continuation!r}: the model needs "
                             "at least one token to condition on")
        seq = whole[:-1]
        first = len(whole) - len(targets) - 1
        overflow = max(0, len(seq) - self.max_length)  # left-truncate over-long inputs
        return _Scored(tuple(seq[overflow:]), first - overflow, tuple(targets))

    @torch.no_grad()
    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[Loglikelihood]:
        scored = [self._encode(c, x) for c, x in requests]
        # Group requests by the pass that serves them: identical or prefix-covered inputs.
        unique = sorted({s.input_ids for s in scored}, key=lambda s: (-len(s), s))
        lengths = {len(u) for u in unique}
        owner: dict[tuple[int, ...], tuple[int, ...]] = {}
        passes: list[tuple[int, ...]] = []
        for seq in unique:
            if seq in owner:
                continue
            passes.append(seq)
            owner[seq] = seq
            for n in lengths:
                if n < len(seq):
                    owner.setdefault(seq[:n], seq)
        served: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, s in enumerate(scored):
            served[owner[s.input_ids]].append(i)

        results: list[Loglikelihood | None] = [None] * len(scored)
        device = model_device(self.model)
        done = 0
        for batch in self._batches(passes):
            ids, mask = right_pad(batch, pad_id(self.tokenizer), device)  # (B, T)
            hidden = final_hidden(self.model, ids, mask)  # (B, T, d)
            rows: list[int] = []
            cols: list[int] = []
            tokens: list[int] = []
            spans: list[tuple[int, int, int]] = []
            for b, seq in enumerate(batch):
                for i in served[seq]:
                    s = scored[i]
                    start = len(rows)
                    for j, tok in enumerate(s.targets):
                        rows.append(b)
                        cols.append(s.first + j)
                        tokens.append(tok)
                    spans.append((i, start, len(rows)))
            picked = hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
            logp, greedy = self._score(picked, torch.tensor(tokens, device=device))  # (N,), (N,)
            self.nonfinite += int((~torch.isfinite(logp)).sum())
            for i, a, b in spans:
                results[i] = Loglikelihood(float(logp[a:b].sum()), b - a, bool(greedy[a:b].all()))
            done += len(spans)
            if self.progress is not None:
                self.progress(done, len(scored))
        return [r for r in results if r is not None]

    def _score(self, hidden: torch.Tensor, tokens: torch.Tensor,
               chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, d) hidden, (N,) tokens -> log-probs and is-argmax of those tokens, in chunks."""
        logps, greedy = [], []
        for a in range(0, hidden.shape[0], chunk):
            logits = logits_from_hidden(self.model, hidden[a : a + chunk]).float()  # (n, V)
            logp = F.log_softmax(logits, dim=-1)
            tok = tokens[a : a + chunk]
            logps.append(logp.gather(1, tok[:, None]).squeeze(1).cpu())
            greedy.append((logits.argmax(dim=-1) == tok).cpu())
        return torch.cat(logps), torch.cat(greedy)

    def _batches(self, passes: list[tuple[int, ...]]) -> list[list[tuple[int, ...]]]:
        """Longest first; each batch's padded size stays under ``batch_tokens``."""
        batches: list[list[tuple[int, ...]]] = []
        current: list[tuple[int, ...]] = []
        for seq in passes:  # already sorted by length, longest first
            width = len(current[0]) if current else len(seq)
            if current and ((len(current) + 1) * width > self.batch_tokens
                            or len(current) >= self.max_batch):
                batches.append(current)
                current = []
            current.append(seq)
        if current:
            batches.append(current)
        return batches

    # -- generation -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, requests: Sequence[Generation]) -> list[str]:
        """Greedy decoding, one request at a time, cut at the first stop string."""
        device = model_device(self.model)
        out: list[str] = []
        for req in requests:
            ids = torch.tensor([self.tokenizer(req.context)["input_ids"]], device=device)
            generated = generate(self.model, ids, pad_id(self.tokenizer), do_sample=False,
                                 max_new_tokens=req.max_new_tokens)  # (1, T + new)
            text = decode(self.tokenizer, generated[0, ids.shape[1]:])
            cuts = [text.find(s) for s in req.stop if s and s in text]
            out.append(text[: min(cuts)] if cuts else text)
        return out
