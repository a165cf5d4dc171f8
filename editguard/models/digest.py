"""Digests of weights: one per parameter (restore checks) and a model fingerprint (cache keys)."""

from __future__ import annotations

import hashlib

import torch
from transformers import PreTrainedModel


def tensor_digest(tensor: torch.Tensor) -> str:
    data = tensor.detach().contiguous().cpu().view(torch.uint8).numpy()
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()


def fingerprint(model: PreTrainedModel) -> tuple[str, dict[str, str]]:
    digests = {name: tensor_digest(p) for name, p in model.named_parameters()}
    h = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    for name in sorted(digests):
        h.update(f"{name}={digests[name]};".encode())
    return h.hexdigest(), digests
