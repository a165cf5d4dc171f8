"""Hidden vectors at a subject's last token: ROME/MEMIT keys (MLP inputs) and values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.nethook import Trace
from editguard.editors.prompts import encode_with_subject
from editguard.lm.device import model_device
from editguard.lm.tokens import pad_id, right_pad


@torch.no_grad()
def at_subject(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               texts: Sequence[str], subjects: Sequence[str], modules: Sequence[str],
               track: Literal["in", "out"], batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Input (``track="in"``) or output of each module at each text's subject-last token.

    Returns ``{module: (len(texts), d)}`` in float32. One forward per batch, stopped after the
    deepest traced module.
    """
    device = model_device(model)
    encoded = [encode_with_subject(tokenizer, t, s) for t, s in zip(texts, subjects, strict=True)]
    chunks: dict[str, list[torch.Tensor]] = {m: [] for m in modules}
    for start in range(0, len(encoded), batch_size):
        part = encoded[start : start + batch_size]
        ids, mask = right_pad([e[0] for e in part], pad_id(tokenizer), device)  # (B, T)
        rows = torch.arange(len(part), device=device)
        where = torch.tensor([e[1] for e in part], device=device)  # (B,)
        with Trace(model, modules, keep_inputs=track == "in", keep_outputs=track == "out",
                   stop=True) as trace:
            model(input_ids=ids, attention_mask=mask)
        seen = trace.inputs if track == "in" else trace.outputs
        for m in modules:
            out = seen[m]  # on its layer's device (a sharded model has several)
            chunks[m].append(out[rows.to(out.device), where.to(out.device)].float().to(device))
    return {m: torch.cat(c) for m, c in chunks.items()}


def template_weights(n_templates: int, grouped: bool) -> torch.Tensor:
    """(n_templates,) weights for averaging keys over ``["{}", prefix_1, ..., prefix_k]``.

    ``grouped`` (MEMIT's ``compute_ks``): the mean over each template group, then over the
    groups: the plain prompt weighs 1/2 and each of the k prefixed versions 1/(2k). Otherwise
    (ROME's ``compute_u``, one flat template list) every template weighs 1/(k+1).
    """
    if n_templates < 1:
        raise ValueError(f"need at least the plain template, got {n_templates}")
    k = n_templates - 1
    if not grouped or k == 0:
        return torch.full((n_templates,), 1.0 / n_templates, dtype=torch.float64)
    return torch.tensor([0.5] + [0.5 / k] * k, dtype=torch.float64)


def average_over_templates(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n_requests * n_templates, d) ordered request-major -> (n_requests, d), weighted."""
    per_request = vectors.view(-1, len(weights), vectors.shape[-1]).double()  # (n, T, d)
    return (per_request * weights.to(per_request.device)[None, :, None]).sum(dim=1)
