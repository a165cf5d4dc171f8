"""Edit prompts in two parts: tokens before the subject's last token once, the rest per step.

The value optimisation changes one hidden vector, at the subject's last token, at or above
block ``start`` (the first block holding an edited module). Two things are the same at every
optimisation step, and a ``SplitBatch`` computes them once:
  - the heads: every token before the subject's last token (a context prefix, the start of the
    prompt, the subject's first tokens) attends only to earlier tokens, so its keys and values
    in every block are fixed; they are run once and kept as a KV cache;
  - the tails below ``start``: the tail tokens' residual stream entering block ``start`` does
    not depend on the delta either; it is recorded once, and per step only blocks start and up
    run, on that recording (``blocks.starting_at``; the tails attend to the heads' cache only in
    blocks >= start).
Each step then runs the tails, which start at the subject's last token (column 0), through
blocks start..L-1 only.

Layout, per row i with subject token s_i and length n_i:
    head: ids[:s_i], left-padded to H columns      (run once, no gradient)
    tail: ids[s_i:], right-padded to W columns     (blocks >= start run every step)
    mask: (B, H + W), positions: head 0..s_i-1, tail s_i..n_i-1, so each row sees exactly what
    it sees alone. On a 17-token prompt whose subject ends at token 12, edited at block 5 of 30,
    a step computes 5 positions in 25 blocks instead of 17 positions in 30.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
from transformers import DynamicCache, PreTrainedModel

from editguard.editors.blocks import starting_at
from editguard.editors.layers import arch_for, n_layers
from editguard.editors.nethook import Trace
from editguard.lm import cache as kv


@dataclasses.dataclass(frozen=True)
class SplitBatch:
    tail_ids: torch.Tensor  # (B, W)
    mask: torch.Tensor  # (B, H + W)
    positions: torch.Tensor  # (B, W)
    heads: DynamicCache  # KV of the heads, H positions; never extended (copied per forward)
    start: int = 0  # the first block a step runs
    entering: torch.Tensor | None = None  # (B, W, d) the tails' stream entering block start

    @classmethod
    @torch.no_grad()
    def build(cls, model: PreTrainedModel, rows: Sequence[Sequence[int]],
              subject_pos: Sequence[int], pad: int, device: torch.device,
              start: int = 0) -> "SplitBatch":
        heads = [list(r[:s]) for r, s in zip(rows, subject_pos, strict=True)]
        tails = [list(r[s:]) for r, s in zip(rows, subject_pos, strict=True)]
        if any(not t for t in tails):
            raise ValueError("a subject position lies past the end of its row")
        if not 0 <= start < n_layers(model):
            raise ValueError(f"start block {start} is not a block of this "
                             f"{n_layers(model)}-block model")
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
        batch = cls(tail_ids, mask, positions, cache)
        if start == 0:
            return batch
        block = arch_for(model).block_name(start)
        with Trace(model, [block], keep_inputs=True, stop=True) as trace:
            batch._forward(model)  # stops once block ``start`` has run
        return dataclasses.replace(batch, start=start, entering=trace.inputs[block])

    def hidden(self, model: PreTrainedModel) -> torch.Tensor:
        """(B, W, d) final hidden states of the tails; column 0 is each row's subject token."""
        if self.entering is None:
            return self._forward(model)
        with starting_at(model, self.start, self.entering):
            return self._forward(model)

    def _forward(self, model: PreTrainedModel) -> torch.Tensor:
        cache = copy.deepcopy(self.heads)  # the forward appends the tails to it
        return kv.forward(model, self.tail_ids, self.mask, self.positions, cache)
