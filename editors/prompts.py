"""Edit prompts: subject positions and context templates."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.lm.device import model_device
from editguard.lm.forward import generate
from editguard.edits.request import EditRequest
from editguard.lm.tokens import decode, pad_id, right_pad


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
    device = model_device(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(n):
            ids = tokenizer(starters[i % len(starters)], return_tensors="pt")["input_ids"].to(device)
            out = generate(model, ids, pad_id(tokenizer), do_sample=True, top_k=5,
                           max_new_tokens=length)  # (1, T + length)
            prefix = decode(tokenizer, out[0])
            prefix = prefix.replace("{", " ").replace("}", " ").replace("\n", " ").strip()
            templates.append(prefix + ". {}")
    return templates


@dataclasses.dataclass(frozen=True)
class TargetBatch:
    """Edit prompts followed by their new targets, teacher-forced, and where each target token
    is predicted: ``hidden[rows, positions]`` gives the states whose next token is ``tokens``."""

    ids: torch.Tensor  # (B, T) prompt + target[:-1], right-padded
    mask: torch.Tensor  # (B, T)
    rows: torch.Tensor  # (N,) one entry per target token
    positions: torch.Tensor  # (N,)
    tokens: torch.Tensor  # (N,)


def target_batch(tokenizer: PreTrainedTokenizerBase, requests: Sequence[EditRequest],
                 device: torch.device) -> TargetBatch:
    rows, label_rows, label_pos, label_tok = [], [], [], []
    for i, request in enumerate(requests):
        prompt = tokenizer(request.text)["input_ids"]
        target = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
        rows.append(prompt + target[:-1])
        for j, tok in enumerate(target):
            label_rows.append(i)
            label_pos.append(len(prompt) - 1 + j)
            label_tok.append(tok)
    ids, mask = right_pad(rows, pad_id(tokenizer), device)  # (B, T)
    return TargetBatch(ids, mask, torch.tensor(label_rows, device=device),
                       torch.tensor(label_pos, device=device),
                       torch.tensor(label_tok, device=device))
