"""PMET: precise model editing in a transformer (Li et al., AAAI 2024).

MEMIT's batch update of the MLP output matrices of several layers, with two changes to what the
update aims at and how it is spread (following the PMET authors' code, ``pmet_main.py`` and
``compute_zs.py``):

    at the last edited layer L, at the subject's last token, two deltas are trained together:
        d_attn added to the attention output projection's output                     (d,)
        d_mlp  added to the MLP output projection's output                           (d,)
    with MEMIT's loss (NLL + KL + each delta's weight decay), each delta clamped against its own
    module's initial output; once the new target is the argmax everywhere the NLL weighs 0.1
    and the optimisation stops when the KL term is at most 0.01.
    z = m_init + d_mlp, the MLP output at L that the edit should produce (the attention delta
    only helps find it and is dropped: only MLP weights change)
    for each edited layer l (shallow to deep), keys K (n, in) as MEMIT's:
        R    = (z - MLP_out_L(current weights)) / sqrt(layers left)                  (n, d)
        dW_l = R^T K (lambda C_l + K^T K)^-1                                         (d, in)
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.layers import arch_for, layer_field
from editguard.editors.memit import MemitEditor, MemitSettings
from editguard.editors.values import VALUE_OPTIMISATION, Value, ValueSettings, optimise_requests
from editguard.edits.request import EditRequest

ALGORITHM = {"method": "PMET (Li et al., 2024)", "follows": "xpq-tech/PMET",
             "key_average": "per fact: 1/2 plain prompt, 1/(2k) each of k prefixed versions",
             "targets": "attention and MLP output deltas at the last layer's subject token, "
                        "trained jointly; the MLP one is the update's target",
             "spread": "residual / sqrt(layers left)",
             "argmax_rules": "NLL x argmax_nll_factor once the target is the argmax; stop when "
                             "KL <= argmax_stop_kl then",
             **VALUE_OPTIMISATION}


@dataclasses.dataclass(frozen=True)
class PmetSettings(MemitSettings):
    layers: tuple[int, ...] = layer_field((3, 4, 5, 6, 7, 8))
    mom2_update_weight: float = 6000.0
    argmax_nll_factor: float = 0.1
    argmax_stop_kl: float = 0.01

    def values(self) -> ValueSettings:
        return dataclasses.replace(super().values(), argmax_nll_factor=self.argmax_nll_factor,
                                   argmax_stop_kl=self.argmax_stop_kl)


class PmetEditor(MemitEditor):
    name: ClassVar[str] = "pmet"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = PmetSettings

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        super()._prepare(model, tokenizer)  # templates and E[k k^T] per layer, as MEMIT's
        self.provenance = {**self.provenance, "algorithm": ALGORITHM}

    def _z_module(self, model: PreTrainedModel) -> str:
        """z is the MLP output of the last edited layer, not the residual stream."""
        return arch_for(model).mlp_out_name(self._cfg.layers[-1])

    def _values(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                requests: list[EditRequest]) -> list[Value]:
        """The MLP output's delta of each request, optimised jointly with its attention
        output's (the attention delta is not used for the update)."""
        last = self._cfg.layers[-1]
        arch = arch_for(model)
        out = optimise_requests(model, tokenizer,
                                [arch.mlp_out_name(last), arch.attn_out_name(last)], requests,
                                self._templates, self._cfg.values())
        return [mlp for mlp, _attn in out]

    @staticmethod
    def _spread(layers_left: int) -> float:
        return math.sqrt(layers_left)
