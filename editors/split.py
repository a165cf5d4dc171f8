"""Edit prompts run in two parts: the tokens before the subject's last token once, the rest per step.

The value optimisation changes one hidden vector, at the subject's last token. Every token
before it (a context prefix, the start of the prompt, the subject's first tokens) attends only
to earlier tokens, so its keys and values are the same at every optimisation step. A
``SplitBatch`` runs those heads once and keeps their KV cache; each step then runs only the
tails, which start at the subject's last token (column 0) and attend to the cached heads.

Layout, per row i with subject token s_i and length n_i:
    head: ids[:s_i], left-padded to H columns      (run once, no gradient)
    tail: ids[s_i:], right-padded to W columns     (run every step)
    mask: (B, H + W), positions: head 0..s_i-1, tail s_i..n_i-1, so each row sees exactly what
    it sees alone. On a 17-token prompt whose subject ends at token 12, a step computes 5
    positions instead of 17.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
from transformers import DynamicCache, PreTrainedModel

from editguard.lm import cache as kv


@dataclasses.dataclass(frozen=True)
class SplitBatch:
    tail_ids: torch.Tensor  # (B, W)
    mask: torch.Tensor  # (B, H + W)
    positions: torch.Tensor  # (B, W)
    heads: DynamicCache  # KV of the heads, H positions; never extended (copied per forward)

    @classmethod
    @torch.no_grad()
    def build(cls, model: PreTrainedModel, rows: Sequence[Sequence[int]],
              subject_pos: Sequence[int], pad: int, device: torch.device) -> "SplitBatch":
        heads = [list(r[:s]) for r, s in zip(rows, subject_pos, strict=True)]
        tails = [list(r[s:]) for r, s in zip(rows, subject_pos, strict=True)]
        if any(not t for t in tails):
            raise ValueError("a subject position lies past the end of its row")
        head_len = max(len(h) for h in heads)
        cache = DynamicCache(config=model.config)
        if head_len:
            head_ids, head_mask, head_pos = kv.left_pad(heads, pad, 0, device)  # (B, H) each
            kv.forward(model, head_ids, head_mask, head_pos, cache)
        else:
            head_mask = torch.zeros((len(rows), 0), dtype=torch.long, device=device)
        tail_ids, tail_mask, _ = kv.right_pad(tails, pad, 0, device)  # (B, W)
        width = tail_ids.shape[1]
        lengths = torch.tensor([len(h) for h in heads], device=device)[:, None]  # (B, 1)
        positions = lengths + torch.arange(width, device=device)[None]  # (B, W)
        mask = torch.cat([head_mask, tail_mask], dim=1)  # (B, H + W)
        return cls(tail_ids, mask, positions, cache)

    def hidden(self, model: PreTrainedModel) -> torch.Tensor:
        """(B, W, d) final hidden states of the tails; column 0 is each row's subject token."""
        cache = copy.deepcopy(self.heads)  # the forward appends the tails to it
        return kv.forward(model, self.tail_ids, self.mask, self.positions, cache)
