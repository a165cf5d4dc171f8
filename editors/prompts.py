"""Edit prompts: subject positions and context templates."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.lm.device import model_device
from editguard.lm.forward import generate
from editguard.lm.tokens import decode, pad_id


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
