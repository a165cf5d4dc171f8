"""Padded token batches, and text from token ids."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase


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


def decode(tokenizer: PreTrainedTokenizerBase, ids: list[int] | torch.Tensor) -> str:
    """One sequence of ids -> its text, special tokens dropped."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if not isinstance(text, str):
        raise TypeError(f"decode of one sequence returned {type(text).__name__}, expected str")
    return text
