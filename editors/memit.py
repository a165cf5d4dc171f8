"""MEMIT: mass-editing memory in a transformer (Meng et al., 2023).

A batch of facts is written into the MLP output matrices of several layers at once:
    z_i   = target residual stream after the last edited layer, per fact     (d,)
    for each edited layer l (shallow to deep), with keys K (n, in) at l, each the average over
    the plain prompt (weight 1/2) and its k prefixed versions (1/(2k) each):
        R = (z - h_current) / (layers left)                                  (n, d)
        dW_l = R^T K (lambda C_l + K^T K)^-1                                 (d, in)
C_l = E[k k^T] over a corpus, lambda = mom2_update_weight. (lambda C_l)^-1 is computed once per
prepare, and each edit's inverse is a Woodbury update of rank n (``update_from_inverse``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditorBase
from editguard.editors.keys import at_subject, average_over_templates, template_weights
from editguard.editors.layers import arch_for, check_increasing, from_out_in, layer_field
from editguard.editors.prompts import context_templates, fill
from editguard.editors.stats import layer_stats
from editguard.editors.values import (VALUE_OPTIMISATION, RewriteSettings, Value,
                                     optimise_requests)
from editguard.edits.request import EditRequest


# Follows the MEMIT authors' code (memit/memit_main.py, compute_ks.py, compute_z.py).
ALGORITHM = {"method": "MEMIT (Meng et al., 2023)", "follows": "kmeng01/memit",
             "key_average": "per fact: 1/2 plain prompt, 1/(2k) each of k prefixed versions",
             **VALUE_OPTIMISATION}


@dataclasses.dataclass(frozen=True)
class MemitSettings(RewriteSettings):
    layers: tuple[int, ...] = layer_field((3, 4, 5, 6, 7))
    mom2_update_weight: float = 15000.0


class MemitEditor(EditorBase):
    name: ClassVar[str] = "memit"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = MemitSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._templates: list[str] = []
        self._inverse: dict[int, torch.Tensor] = {}  # (lambda C_l)^-1 per layer, float64

    def _validate(self, cfg: MemitSettings) -> None:
        check_increasing(self.name, cfg.layers)

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        arch = arch_for(model)
        return [arch.weight_name(layer) for layer in self._cfg.layers]

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        cfg: MemitSettings = self._cfg
        self._templates = context_templates(model, tokenizer, cfg.context_templates,
                                            cfg.context_length, self.context.seed)
        stats = layer_stats(model, tokenizer, list(cfg.layers), cfg.stats(),
                            self.context)
        self._keep_statistics({layer: s.mom2.double() for layer, s in stats.items()})
        self.provenance = {"algorithm": ALGORITHM, "context_templates": self._templates,
                           "stats": [s.provenance() for s in stats.values()]}

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: MemitSettings = self._cfg
        arch = arch_for(model)
        z_module = self._z_module(model)
        values = self._values(model, tokenizer, requests)
        zs = torch.stack([v.init + v.delta for v in values]).double()  # (n, d)
        subjects = [r.subject for r in requests]
        plain = [r.text for r in requests]
        norms: dict[str, float] = {}
        for i, layer in enumerate(cfg.layers):
            module = arch.mlp_out_name(layer)
            weight = model.get_parameter(arch.weight_name(layer))
            keys = self._keys(model, tokenizer, requests, layer)  # (n, in)
            current = at_subject(model, tokenizer, plain, subjects, [z_module],
                                 "out")[z_module].double()  # (n, d)
            resid = zs.to(current.device) - current  # (n, d)
            resid = resid / self._spread(len(cfg.layers) - i)
            update = self._layer_update(layer, keys, resid)  # (d, in)
            with torch.no_grad():
                weight.add_(from_out_in(update, arch).to(weight.device, weight.dtype))
            norms[module] = float(update.norm())
        self._after_update(model, tokenizer, requests)
        return {"target_nll": [v.nll for v in values], "value_steps": [v.steps for v in values],
                "update_norms": norms}

    def _z_module(self, model: PreTrainedModel) -> str:
        """Where the target vector z lives: the residual stream after the last edited layer."""
        return arch_for(model).block_name(self._cfg.layers[-1])

    def _values(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                requests: list[EditRequest]) -> list[Value]:
        """z per request: the delta at ``_z_module``'s output (and its output before), each
        request's own optimisation, run for several requests at once."""
        out = optimise_requests(model, tokenizer, [self._z_module(model)], requests,
                                self._templates, self._cfg.values())
        return [value for (value,) in out]

    @staticmethod
    def _spread(layers_left: int) -> float:
        """What the residual is divided by at a layer with ``layers_left`` layers to go
        (itself included): MEMIT spreads it evenly."""
        return float(layers_left)

    def _keys(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              requests: list[EditRequest], layer: int) -> torch.Tensor:
        """(n, in) float64: each request's key at ``layer``, averaged over the templates."""
        module = arch_for(model).mlp_out_name(layer)
        weights = template_weights(len(self._templates), grouped=True)  # (T,)
        ctx = [fill(t, r.text) for r in requests for t in self._templates]  # request-major
        ctx_subjects = [r.subject for r in requests for _ in self._templates]
        keys = at_subject(model, tokenizer, ctx, ctx_subjects, [module], "in")[module]
        return average_over_templates(keys, weights)

    def _keep_statistics(self, mom2: dict[int, torch.Tensor]) -> None:
        """What the updates need of C_l = E[k k^T] (in, in) per layer: for MEMIT only
        (lambda C_l)^-1, inverted here once per prepare."""
        weight = self._cfg.mom2_update_weight
        self._inverse = {layer: torch.linalg.inv(weight * c) for layer, c in mom2.items()}

    def _layer_update(self, layer: int, keys: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
        """(n, in) keys, (n, d) residuals -> (d, in) update: R^T K (lambda C + K^T K)^-1."""
        return update_from_inverse(self._inverse[layer].to(keys.device), keys, resid)

    def _after_update(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      requests: list[EditRequest]) -> None:
        """Work once every layer is updated (AlphaEdit records the new keys); MEMIT has none."""


def update_from_inverse(inverse: torch.Tensor, keys: torch.Tensor,
                        resid: torch.Tensor) -> torch.Tensor:
    """R^T K (A + K^T K)^-1 from A^-1 (in, in), keys K (n, in) and residuals R (n, d), by
    Woodbury: (A + K^T K)^-1 K^T = A^-1 K^T (I_n + K A^-1 K^T)^-1, an n x n solve instead of
    an in x in one. Float64 in, float64 out: (d, in)."""
    a_inv_kt = inverse @ keys.T  # (in, n)
    small = torch.eye(len(keys), dtype=keys.dtype, device=keys.device) + keys @ a_inv_kt  # (n, n)
    adj = torch.linalg.solve(small, a_inv_kt.T)  # (n, in) = ((A + K^T K)^-1 K^T)^T, small symmetric
    return resid.T @ adj  # (d, in)
