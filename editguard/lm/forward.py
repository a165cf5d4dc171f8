"""Causal-LM forward in two halves, so logits are computed only where a score needs them; and
the one way editguard calls ``generate``."""

from __future__ import annotations

import torch
from transformers import GenerationMixin, PreTrainedModel


def final_hidden(model: PreTrainedModel, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) ids -> (B, T, d) hidden states after the final norm (no vocabulary projection)."""
    out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state.to(input_ids.device)  # a sharded model ends on another device


def logits_from_hidden(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., V), with the final soft-capping some families (Gemma 2/3) apply."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings (not a causal LM?)")
    logits = head(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.to(hidden.device)  # the head of a sharded model may sit on another device


def generate(model: PreTrainedModel, input_ids: torch.Tensor, pad_token_id: int,
             **options: object) -> torch.Tensor:
    """(1, T) ids -> (1, T + new) ids from ``model.generate`` (options: do_sample, top_k,
    max_new_tokens, ...), with a full attention mask."""
    if not isinstance(model, GenerationMixin):
        raise TypeError(f"{type(model).__name__} cannot generate text (it is not a "
                        "transformers GenerationMixin); load it with AutoModelForCausalLM")
    out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                         pad_token_id=pad_token_id, **options)
    if not isinstance(out, torch.Tensor):  # only return_dict_in_generate=True gives a record
        raise TypeError(f"generate returned {type(out).__name__}, expected token ids")
    return out
