"""FT-L: fine-tuning one MLP output matrix under an L-infinity bound (the ROME paper's baseline).

Minimises the NLL of ``target_new`` after each prompt with Adam on one weight matrix, and after
every step clips each entry back into [w0 - eps, w0 + eps].
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditorBase
from editguard.editors.layers import arch_for, layer_field
from editguard.editors.prompts import target_batch
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest
from editguard.lm.device import model_device
from editguard.lm.forward import final_hidden, logits_from_hidden
from editguard.settings import at_least


@dataclasses.dataclass(frozen=True)
class FtSettings:
    layer: int = layer_field(5)
    steps: int = at_least(25, 1)
    lr: float = 5e-4
    norm_constraint: float = 5e-3  # L-inf bound on each entry's change; 0 = unconstrained
    early_stop_nll: float = 0.05


class FineTuneEditor(EditorBase):
    name: ClassVar[str] = "ft"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = FtSettings

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        return [arch_for(model).weight_name(self._cfg.layer)]

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: FtSettings = self._cfg
        device = model_device(model)
        weight = model.get_parameter(arch_for(model).weight_name(cfg.layer))
        batch = target_batch(tokenizer, requests, device)
        ids, mask, r, p, t = batch.ids, batch.mask, batch.rows, batch.positions, batch.tokens
        original = weight.detach().clone()
        optimiser = torch.optim.Adam([weight], lr=cfg.lr)
        nll = float("inf")
        step = 0
        with frozen(model), torch.enable_grad():
            weight.requires_grad_(True)
            for step in range(1, cfg.steps + 1):
                optimiser.zero_grad()
                hidden = final_hidden(model, ids, mask)  # (B, T, d)
                logp = F.log_softmax(logits_from_hidden(model, hidden[r, p]).float(), dim=-1)
                loss = -logp.gather(1, t[:, None]).mean()  # logp: (N, V)
                nll = float(loss.detach())
                if nll < cfg.early_stop_nll:
                    break
                loss.backward()
                optimiser.step()
                if cfg.norm_constraint > 0:
                    with torch.no_grad():
                        lo, hi = original - cfg.norm_constraint, original + cfg.norm_constraint
                        weight.copy_(torch.maximum(torch.minimum(weight, hi), lo))
        weight.grad = None
        return {"target_nll": nll, "steps": step,
                "update_norm": float((weight.detach() - original).norm())}
