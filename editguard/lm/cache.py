"""Forward passes that read and extend a KV cache: a shared prefix run once, then many suffixes.

Layout of a cached batch, left to right: the shared prefix (P tokens, the same in every row, no
padding), then each row's own tokens left-padded to a common width W. The attention mask marks
the padding, and positions count only real tokens, so row i sees exactly what it would see alone:
prefix + its own tokens at positions 0 .. P + len_i - 1.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence

import torch
from transformers import DynamicCache, PreTrainedModel


@functools.cache
def _cache_keyword(forward: Callable[..., object]) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` (5.2x); take whichever it has."""
    params = inspect.signature(forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def forward(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            position_ids: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
    """(B, T) new ids, (B, past + T) mask, (B, T) positions -> (B, T, d) final hidden states;
    ``cache`` grows by the T new positions."""
    base = model.base_model
    kwargs = {_cache_keyword(type(base).forward): cache}
    out = base(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
               use_cache=True, **kwargs)
    return out.last_hidden_state.to(input_ids.device)  # a sharded model ends on another device


def run_prefix(model: PreTrainedModel, prefix: Sequence[int],
               device: torch.device) -> DynamicCache:
    """The KV cache of one shared prefix (batch 1)."""
    cache = DynamicCache(config=model.config)
    if not prefix:
        return cache
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)  # (1, P)
    forward(model, ids, torch.ones_like(ids), torch.arange(len(prefix), device=device)[None], cache)
    return cache


def repeat(cache: DynamicCache, batch: int) -> DynamicCache:
    """A copy of a batch-1 cache for ``batch`` rows (the original stays reusable)."""
    out = copy.deepcopy(cache)
    if batch > 1 and out.get_seq_length() > 0:
        out.batch_repeat_interleave(batch)
    return out


def left_pad(rows: Sequence[Sequence[int]], pad: int, prefix_len: int,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, W) ids, (B, P + W) attention mask and (B, W) positions for rows that follow a
    shared prefix of ``prefix_len`` tokens, each row padded on the left."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), prefix_len + width), dtype=torch.long)
    mask[:, :prefix_len] = 1
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(list(row), dtype=torch.long)
        mask[i, prefix_len + width - len(row):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix_len:]  # pads repeat a position
    return ids.to(device), mask.to(device), positions.to(device)


def right_pad(rows: Sequence[Sequence[int]], pad: int, prefix_len: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As ``left_pad`` with the padding on the right (row i's token j sits at column j)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), prefix_len + width), dtype=torch.long)
    mask[:, :prefix_len] = 1
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
        mask[i, prefix_len : prefix_len + len(row)] = 1
    positions = prefix_len + torch.arange(width)[None].expand(len(rows), width)
    return ids.to(device), mask.to(device), positions.clone().to(device)
