"""A checkpoint edited elsewhere, played as an editor: ``apply`` copies its weights into the live
base model, so the run scores it, restores the base and checks it bit for bit, like any edit.

Only the parameters whose values differ from the base are copied (and declared), so the weight
change diagnostics name the matrices the other tool edited. It is not in the method registry:
``--edited PATH_OR_ID --base PATH_OR_ID`` selects it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditHandle, EditRequest, PrepareContext
from editguard.models.loading import load
from editguard.models.spec import ModelSpec
from editguard.data.paths import editguard_home

NAME = "edited"


def method_label(spec: ModelSpec) -> str:
    """The method column of a checkpoint's rows and test ids: ``edited:<its short name>``."""
    return f"{NAME}:{spec.label}"


class Checkpoint:
    name: ClassVar[str] = NAME
    supports_batch: ClassVar[bool] = True

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._changed: dict[str, torch.Tensor] = {}  # parameter name -> the edited values (CPU)
        self.provenance: dict[str, Any] = {}

    @property
    def config(self) -> Mapping[str, object]:
        return {"checkpoint": self.spec.source}

    @torch.no_grad()
    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                context: PrepareContext) -> None:
        """Load the checkpoint on the CPU in the base's dtype and keep what differs from it."""
        edited = load(ModelSpec(self.spec.source, self.spec.dtype, "cpu",
                                self.spec.trust_remote_code), editguard_home())
        theirs = dict(edited.model.named_parameters())
        ours = dict(model.named_parameters())
        if set(theirs) != set(ours):
            missing = sorted(set(ours) ^ set(theirs))[:5]
            raise ValueError(f"--edited {self.spec.source!r} has other parameters than the base "
                             f"model (e.g. {missing}); pass the base it was edited from")
        self._changed = {name: tensor.detach().clone() for name, tensor in theirs.items()
                         if not torch.equal(tensor, ours[name].detach().cpu())}
        self.provenance = {"fingerprint": edited.fingerprint, "path": edited.path,
                           "changed_parameters": sorted(self._changed)}
        del edited, theirs

    def parameter_names(self, model: PreTrainedModel) -> list[str]:
        return sorted(self._changed)

    @torch.no_grad()
    def apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              requests: Sequence[EditRequest]) -> EditHandle:
        handle = EditHandle.snapshot(model, sorted(self._changed))
        params = dict(model.named_parameters())
        try:
            for name, tensor in self._changed.items():
                params[name].copy_(tensor.to(params[name].device))
        except BaseException:
            handle.restore()  # a copy that failed half way leaves the base as it was
            raise
        handle.batches.append({"checkpoint": self.spec.source,
                               "changed_parameters": len(self._changed)})
        return handle
