"""ROME: rank-one model editing (Meng et al., 2022).

One fact is one rank-one update of the MLP output matrix W (out, in) at one layer:
    k* = key at the subject's last token, averaged with equal weights over the
         plain prompt and its model-written prefixed versions                   (in,)
    u  = C^-1 k* / |C^-1 k*|        C = E[k k^T] over a corpus (or I)      (in,)
    v* = W k + delta                 delta from the value optimisation       (out,)
    W' = W + (delta / (k . u)) u^T   so that W' k = v*  for the plain-prompt key k
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditorBase
from editguard.editors.keys import at_subject, average_over_templates, template_weights
from editguard.editors.layers import arch_for, from_out_in, layer_field
from editguard.editors.prompts import context_templates, fill
from editguard.editors.stats import layer_stats
from editguard.editors.values import VALUE_OPTIMISATION, RewriteSettings, Value, optimise_value
from editguard.edits.request import EditRequest


# Follows the ROME authors' code (rome/compute_u.py, compute_v.py) and EasyEdit's ROME.
ALGORITHM = {"method": "ROME (Meng et al., 2022)", "follows": "kmeng01/rome, EasyEdit ROME",
             "key_average": "equal weights over ['{}'] + prefixes (one flat template list)",
             **VALUE_OPTIMISATION}


@dataclasses.dataclass(frozen=True)
class RomeSettings(RewriteSettings):
    layer: int = layer_field(5)
    use_covariance: bool = True


class RomeEditor(EditorBase):
    name: ClassVar[str] = "rome"
    supports_batch: ClassVar[bool] = False
    settings: ClassVar[type] = RomeSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._templates: list[str] = []
        self._inv_mom2: torch.Tensor | None = None

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        return [arch_for(model).weight_name(self._cfg.layer)]

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        cfg: RomeSettings = self._cfg
        self._templates = context_templates(model, tokenizer, cfg.context_templates,
                                            cfg.context_length, self.context.seed)
        self.provenance = {"algorithm": ALGORITHM, "context_templates": self._templates}
        if cfg.use_covariance:
            stats = layer_stats(model, tokenizer, [cfg.layer], cfg.stats(),
                                self.context)[cfg.layer]
            self._inv_mom2 = torch.linalg.inv(stats.mom2.double())  # (in, in)
            self.provenance["stats"] = stats.provenance()

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: RomeSettings = self._cfg
        (request,) = requests
        arch = arch_for(model)
        module = arch.mlp_out_name(cfg.layer)
        weight = model.get_parameter(arch.weight_name(cfg.layer))
        texts = [fill(t, request.text) for t in self._templates]
        keys = at_subject(model, tokenizer, texts, [request.subject] * len(texts), [module],
                          "in")[module].double()  # (T, in); row 0 is the plain prompt
        k_star = average_over_templates(keys, template_weights(len(texts), grouped=False))[0]
        u = k_star if self._inv_mom2 is None else self._inv_mom2.to(k_star.device) @ k_star
        u = u / u.norm()  # (in,)
        value = self._value(model, tokenizer, module, request)
        right = value.delta.double().to(u.device) / (keys[0] @ u)  # (out,)
        update = torch.outer(right, u)  # (out, in), rank one
        with torch.no_grad():
            weight.add_(from_out_in(update, arch).to(weight.device, weight.dtype))
        return {"target_nll": value.nll, "value_steps": value.steps,
                "update_norm": float(update.norm())}

    def _value(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, module: str,
               request: EditRequest) -> Value:
        """The delta at ``module``'s output (perf.editing swaps in its full-recompute one)."""
        return optimise_value(model, tokenizer, module, request, self._templates,
                              self._cfg.values())
