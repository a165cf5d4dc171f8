"""Tokenising edit prompts: padded batches, subject positions, and context templates."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def right_pad(rows: Sequence[Sequence[int]], pad: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) input ids and attention mask for token lists padded on the right."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def encode_with_subject(tokenizer: PreTrainedTokenizerBase, text: str,
                        subject: str) -> tuple[list[int], int]:
    """Token ids of ``text`` and the index of the subject's last token (its last occurrence)."""
    start = text.rfind(subject)
    if start < 0:
        raise ValueError(f"subject {subject!r} does not occur in {text!r}")
    end = start + len(subject)
    enc = tokenizer(text, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = enc["offset_mapping"]
    # the last token that starts inside the subject span
    index = max((i for i, (a, b) in enumerate(offsets) if a < end and b > a), default=-1)
    while index > 0 and offsets[index][0] >= end:
        index -= 1
    if index < 0:
        raise ValueError(f"could not locate subject {subject!r} in the tokens of {text!r}")
    return ids, index


def fill(template: str, text: str) -> str:
    """Put ``text`` where a context template has its ``{}`` (no str.format: text may hold braces)."""
    return template.replace("{}", text, 1)


@torch.no_grad()
def context_templates(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      n: int, length: int, seed: int) -> list[str]:
    """``["{}"]`` plus ``n`` short model-written prefixes ``"<prefix>. {}"``.

    ROME averages keys over such prefixes so that the edit does not depend on the exact start
    of the sentence. Sampling is seeded and does not disturb the global RNG.
    """
    starters = ["The", "Therefore", "Because", "I", "You", "It", "When", "In", "A", "She"]
    templates = ["{}"]
    if n <= 0:
        return templates
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(n):
            ids = tokenizer(starters[i % len(starters)], return_tensors="pt")["input_ids"].to(device)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 top_k=5, max_new_tokens=length, pad_token_id=pad_id(tokenizer))
            prefix = tokenizer.decode(out[0], skip_special_tokens=True)
            prefix = prefix.replace("{", " ").replace("}", " ").replace("\n", " ").strip()
            templates.append(prefix + ". {}")
    return templates
