"""Causal-LM forward in two halves, so logits are computed only where a score needs them."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def final_hidden(model: PreTrainedModel, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) ids -> (B, T, d) hidden states after the final norm (no vocabulary projection)."""
    out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state


def logits_from_hidden(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., V), with the final soft-capping some families (Gemma 2/3) apply."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings (not a causal LM?)")
    logits = head(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits
