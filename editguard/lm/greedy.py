"""Batched greedy decoding with a KV cache.

Rows are left-padded after an optional shared prefix (see ``editguard.lm.cache``), so every row
decodes as it would alone; a row leaves the batch when it reaches its own token limit, an
end-of-sequence token, or when ``finished`` says its text is complete (a stop string), and its
cache rows leave with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import DynamicCache, PreTrainedModel

from editguard.lm import cache as kv
from editguard.lm.device import model_device
from editguard.lm.forward import logits_from_hidden


def decode(model: PreTrainedModel, rows: Sequence[Sequence[int]], limits: Sequence[int], *,
           pad: int, eos: frozenset[int], finished: Callable[[int, list[int]], bool],
           prefix: DynamicCache | None = None, prefix_len: int = 0) -> list[list[int]]:
    """New tokens for each row (at most ``limits[i]``; an end token is kept as the last one).

    ``rows[i]`` follows the shared prefix whose batch-1 cache is ``prefix`` (``prefix_len``
    tokens), or stands alone. ``finished(i, tokens)`` is asked after each new token of row i.
    """
    if len(rows) != len(limits):
        raise ValueError(f"{len(rows)} rows but {len(limits)} token limits")
    if any(not r for r in rows):
        raise ValueError("every row needs at least one token of its own after the prefix")
    device = model_device(model)
    out: list[list[int]] = [[] for _ in rows]
    active = [i for i in range(len(rows)) if limits[i] > 0]
    if not active:
        return out
    cache = kv.repeat(prefix, len(active)) if prefix is not None else DynamicCache(
        config=model.config)
    ids, mask, positions = kv.left_pad([rows[i] for i in active], pad, prefix_len, device)
    hidden = kv.forward(model, ids, mask, positions, cache)[:, -1]  # (B, d)
    while True:
        tokens = logits_from_hidden(model, hidden).argmax(dim=-1).tolist()  # (B,)
        keep = []
        for slot, (i, tok) in enumerate(zip(active, tokens)):
            out[i].append(int(tok))
            if len(out[i]) < limits[i] and tok not in eos and not finished(i, out[i]):
                keep.append(slot)
        if not keep:
            return out
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, positions = mask[index], positions[index]
            active = [active[s] for s in keep]
            tokens = [tokens[s] for s in keep]
        step = torch.tensor(tokens, dtype=torch.long, device=device)[:, None]  # (B, 1)
        mask = torch.cat([mask, torch.ones_like(step)], dim=1)  # (B, past + 1)
        positions = positions[:, -1:] + 1  # (B, 1)
        hidden = kv.forward(model, step, mask, positions, cache)[:, -1]
