"""AlphaEdit: MEMIT's update projected onto the null space of preserved knowledge (Fang et al., 2025).

MEMIT spreads an edit over several layers but still moves the outputs for keys the layer
normally sees. AlphaEdit projects each layer's update onto the (approximate) null space of those
keys, so that for preserved keys k0 the update gives dW k0 ~ 0, and it remembers the keys of
earlier edits so a later edit does not undo them (sequential editing):

    P   = U0 U0^T, U0 = eigenvectors of C = E[k k^T] with eigenvalue < nullspace_threshold (in, in)
    for each edited layer l (shallow to deep), keys K (n, in), residuals R (n, d) as in MEMIT:
        X    = (P (K^T K + C_prev) + l2 I)^-1 P K^T R                                 (in, d)
        dW_l = X^T                                                                    (d, in)
    after all layers: C_prev += K'^T K'   (K' = the keys recomputed on the edited model)

C_prev starts at zero on the unedited model and goes back with the weights on restore.

The solve is in x in per layer and edit (1536 on SmolLM2, 11008 on a 7B Llama), but only its
P K^T K part depends on the edit: with A = P C_prev + l2 I kept as A^-1 (l2 I at first, then a
Woodbury update of rank n after each edit, as C_prev grows by K'^T K'),
    X = A^-1 U (I_n + K A^-1 U)^-1 R,   U = P K^T                                   (Woodbury)
an n x n solve. Without a ridge term (l2 = 0) A has no inverse and the system is solved whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.layers import layer_field
from editguard.editors.memit import MemitEditor
from editguard.editors.values import VALUE_OPTIMISATION, RewriteSettings
from editguard.edits.request import EditRequest

# Follows the AlphaEdit authors' code (AlphaEdit/AlphaEdit_main.py, experiments/evaluate.py).
ALGORITHM = {"method": "AlphaEdit (Fang et al., 2025)", "follows": "jianghoucheng/AlphaEdit",
             "key_average": "per fact: 1/2 plain prompt, 1/(2k) each of k prefixed versions",
             "projection": "eigenvectors of E[k k^T] with eigenvalue < nullspace_threshold",
             "update": "(P (K^T K + C_prev) + l2 I)^-1 P K^T R per layer",
             "memory": "C_prev += K^T K of each edit's keys after its update",
             "solve": "Woodbury from (P C_prev + l2 I)^-1, kept per layer (l2 > 0)",
             **VALUE_OPTIMISATION}


@dataclasses.dataclass(frozen=True)
class AlphaEditSettings(RewriteSettings):
    layers: tuple[int, ...] = layer_field((3, 4, 5, 6, 7))
    nullspace_threshold: float = 2e-2  # absolute, on the eigenvalues of E[k k^T], as the reference
    l2: float = 10.0  # the reference's L2: ridge term of the solve


def projector(mom2: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
    """(in, in) projector onto the eigenvectors of ``mom2`` below ``threshold``, and how many."""
    eigenvalues, vectors = torch.linalg.eigh(mom2.double())  # ascending
    small = vectors[:, eigenvalues < threshold]  # (in, k)
    return small @ small.T, small.shape[1]


class AlphaEditEditor(MemitEditor):
    name: ClassVar[str] = "alphaedit"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = AlphaEditSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mom2: dict[int, torch.Tensor] = {}  # E[k k^T] per layer until prepare ends
        self._projectors: dict[int, torch.Tensor] = {}
        self._edited_keys: dict[int, torch.Tensor] = {}  # C_prev per layer, (in, in) float64
        # (P C_prev + l2 I)^-1 per layer, (in, in) float64; only with l2 > 0
        self._system_inverse: dict[int, torch.Tensor] = {}

    def _validate(self, cfg: Any) -> None:
        super()._validate(cfg)
        if not cfg.nullspace_threshold > 0:
            raise ValueError(f"alphaedit: nullspace_threshold {cfg.nullspace_threshold} must be "
                             "positive (--method-opt alphaedit.nullspace_threshold=0.02)")
        if cfg.l2 < 0:
            raise ValueError(f"alphaedit: l2 {cfg.l2} must be 0 or more "
                             "(--method-opt alphaedit.l2=10)")

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        super()._prepare(model, tokenizer)  # templates and E[k k^T] per layer (_keep_statistics)
        cfg: AlphaEditSettings = self._cfg
        kept: dict[str, int] = {}
        for layer, mom2 in self._mom2.items():
            p, k = projector(mom2, cfg.nullspace_threshold)
            if k == 0:
                low = float(torch.linalg.eigvalsh(mom2).min())
                raise ValueError(
                    f"alphaedit: nullspace_threshold {cfg.nullspace_threshold:g} keeps no "
                    f"direction at layer {layer} (its smallest key-covariance eigenvalue is "
                    f"{low:.3g}), so every update would be zero; raise it above that, e.g. "
                    f"--method-opt alphaedit.nullspace_threshold={2 * low:.2g}")
            self._projectors[layer] = p
            kept[str(layer)] = k
        self._mom2 = {}  # only the projectors are needed from here on (in x in float64 each)
        self._edited_keys = {layer: torch.zeros_like(p) for layer, p in self._projectors.items()}
        self._system_inverse = {} if cfg.l2 == 0 else {
            layer: torch.eye(p.shape[0], dtype=p.dtype) / cfg.l2
            for layer, p in self._projectors.items()}
        dims = next(iter(self._projectors.values())).shape[0]
        self.provenance = {**self.provenance, "algorithm": ALGORITHM,
                           "null_space_dims": kept, "key_dims": dims}

    def _keep_statistics(self, mom2: dict[int, torch.Tensor]) -> None:
        self._mom2 = mom2  # the null-space projectors come from C_l; MEMIT's inverse is not used

    def _checkpoint(self) -> Callable[[], None]:
        saved = {layer: c.clone() for layer, c in self._edited_keys.items()}
        saved_inverse = {layer: a.clone() for layer, a in self._system_inverse.items()}

        def undo() -> None:
            self._edited_keys = {layer: c.clone() for layer, c in saved.items()}
            self._system_inverse = {layer: a.clone() for layer, a in saved_inverse.items()}

        return undo

    def _layer_update(self, layer: int, keys: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
        cfg: AlphaEditSettings = self._cfg
        p = self._projectors[layer].to(keys.device)  # (in, in)
        if cfg.l2 == 0:
            prev = self._edited_keys[layer].to(keys.device)  # (in, in)
            x = torch.linalg.solve(p @ (keys.T @ keys + prev), p @ keys.T @ resid)  # (in, d)
            return x.T  # (d, in)
        a_inv_u = self._system_inverse[layer].to(keys.device) @ (p @ keys.T)  # (in, n)
        small = torch.eye(len(keys), dtype=keys.dtype, device=keys.device) \
            + keys @ a_inv_u  # (n, n)
        return (a_inv_u @ torch.linalg.solve(small, resid)).T  # (d, in)

    def _after_update(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      requests: list[EditRequest]) -> None:
        for layer in self._cfg.layers:
            keys = self._keys(model, tokenizer, requests, layer).cpu()  # (n, in), edited model
            self._edited_keys[layer] = self._edited_keys[layer] + keys.T @ keys
            if layer in self._system_inverse:  # A + U K, U = P K^T: Woodbury
                a_inv = self._system_inverse[layer]  # (in, in)
                a_inv_u = a_inv @ (self._projectors[layer] @ keys.T)  # (in, n)
                small = torch.eye(len(keys), dtype=keys.dtype) + keys @ a_inv_u  # (n, n)
                self._system_inverse[layer] = a_inv - a_inv_u @ torch.linalg.solve(
                    small, keys @ a_inv)
