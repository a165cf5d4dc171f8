"""UltraEdit: training-, subject- and memory-free lifelong editing (Gu et al., 2025).

No optimisation and no covariance: each editor call (a "turn") runs one forward and backward
pass per sub-batch of edits and solves one ridge regression per edited matrix. Following the
authors' code (``editor/ultraedit.py``, ``nets.py``):

    rows: every position that predicts a target token (the prompt's last token and each target
    token but the last), over all edits of the turn
        k_i = the matrix's input at row i                                            (N, in)
        g_i = d(mean target NLL) / d(the matrix's output) at row i, on the model as it was
              before the turn                                                        (N, out)
    lifelong normalisation: running per-feature mean and standard deviation of [k, g], merged
    with every sub-batch and never reset across turns (one normaliser per matrix shape)
        k^, g^ = the normalised parts
        V_i    = -lr * ||k^_i||^2 * g^_i                                             (N, out)
        S      = (K^T K + ridge I)^-1 K^T V          (raw keys K)                    (in, out)
        W     += S^T                                                                 (out, in)

The normaliser's state is the editor's memory of earlier turns; restore puts it back with the
weights. The authors' ridge is a fixed 1 and their lr 1e-6 for 7-8B models in half precision;
editguard exposes both (see editors/configs/ultraedit.toml for SmolLM2's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditorBase
from editguard.editors.layers import arch_for, check_increasing, from_out_in, layer_field
from editguard.editors.nethook import Trace
from editguard.editors.prompts import target_batch
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest
from editguard.lm.device import model_device
from editguard.lm.forward import final_hidden, logits_from_hidden
from editguard.settings import at_least

ALGORITHM = {"method": "UltraEdit (Gu et al., 2025)", "follows": "XiaojieGu/UltraEdit",
             "rows": "positions predicting the target's tokens",
             "normaliser": "running mean / std of [key, output gradient] per matrix shape, "
                           "across turns",
             "update": "W += ((K^T K + ridge I)^-1 K^T V)^T, V_i = -lr ||k^_i||^2 g^_i"}


@dataclasses.dataclass(frozen=True)
class UltraEditSettings:
    layers: tuple[int, ...] = layer_field((18, 19, 20, 21, 22, 23, 24, 25, 26))
    lr: float = 1e-6
    ridge: float = 1.0
    sub_batch: int = at_least(10, 1)  # edits per forward / backward pass within a turn


class RunningNorm:
    """Per-feature running mean and variance (Chan's parallel merge) of rows (n, d)."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.mean = torch.zeros(dim, dtype=torch.float64)
        self.m2 = torch.zeros(dim, dtype=torch.float64)  # sum of squared deviations

    def copy(self) -> "RunningNorm":
        out = RunningNorm(self.mean.shape[0])
        out.count, out.mean, out.m2 = self.count, self.mean.clone(), self.m2.clone()
        return out

    def update(self, rows: torch.Tensor) -> None:
        rows = rows.double().cpu()  # (n, d)
        n = rows.shape[0]
        total = self.count + n
        delta = rows.mean(dim=0) - self.mean
        batch_m2 = ((rows - rows.mean(dim=0)) ** 2).sum(dim=0)
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + batch_m2 + delta ** 2 * self.count * n / total
        self.count = total

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        std = (self.m2 / max(self.count - 1, 1)).sqrt()
        eps = torch.finfo(torch.float32).eps
        return (rows.double().cpu() - self.mean) / (std + eps)


class UltraEditEditor(EditorBase):
    name: ClassVar[str] = "ultraedit"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = UltraEditSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._norms: dict[tuple[int, int], RunningNorm] = {}  # (in, out) -> normaliser

    def _validate(self, cfg: UltraEditSettings) -> None:
        check_increasing(self.name, cfg.layers)
        if not cfg.lr > 0 or cfg.ridge < 0:
            raise ValueError(f"ultraedit: lr {cfg.lr} must be positive and ridge {cfg.ridge} "
                             "0 or more (--method-opt ultraedit.lr=1e-4)")

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        arch = arch_for(model)
        return [arch.weight_name(layer) for layer in self._cfg.layers]

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self._norms = {}
        self.provenance = {"algorithm": ALGORITHM}

    def _checkpoint(self) -> Callable[[], None]:
        saved = {shape: norm.copy() for shape, norm in self._norms.items()}

        def undo() -> None:
            self._norms = {shape: norm.copy() for shape, norm in saved.items()}

        return undo

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: UltraEditSettings = self._cfg
        arch = arch_for(model)
        modules = [arch.mlp_out_name(layer) for layer in cfg.layers]
        keys: dict[str, list[torch.Tensor]] = {m: [] for m in modules}
        grads: dict[str, list[torch.Tensor]] = {m: [] for m in modules}
        losses = []
        for start in range(0, len(requests), cfg.sub_batch):
            part = requests[start : start + cfg.sub_batch]
            k, g, loss = _keys_and_gradients(model, tokenizer, part, modules)
            losses.append(loss)
            for m in modules:
                self._norm(k[m].shape[1], g[m].shape[1]).update(torch.cat([k[m], g[m]], dim=1))
                keys[m].append(k[m])
                grads[m].append(g[m])
        norms: dict[str, float] = {}
        for layer, m in zip(cfg.layers, modules, strict=True):
            k_raw = torch.cat(keys[m]).double()  # (N, in)
            g_raw = torch.cat(grads[m]).double()  # (N, out)
            d_in = k_raw.shape[1]
            z = self._norm(d_in, g_raw.shape[1])(torch.cat([k_raw, g_raw], dim=1))  # (N, in+out)
            k_hat, g_hat = z[:, :d_in], z[:, d_in:]
            v = -cfg.lr * (k_hat ** 2).sum(dim=1, keepdim=True) * g_hat  # (N, out)
            k_cpu = k_raw.cpu()
            system = k_cpu.T @ k_cpu + cfg.ridge * torch.eye(d_in, dtype=torch.float64)
            shift = torch.linalg.solve(system, k_cpu.T @ v.cpu())  # (in, out)
            weight = model.get_parameter(arch.weight_name(layer))
            with torch.no_grad():
                weight.add_(from_out_in(shift.T, arch).to(weight.device, weight.dtype))
            norms[m] = float(shift.norm())
        return {"target_nll": losses, "rows": int(sum(x.shape[0] for x in keys[modules[0]])),
                "update_norms": norms}

    def _norm(self, d_in: int, d_out: int) -> RunningNorm:
        if (d_in, d_out) not in self._norms:
            self._norms[(d_in, d_out)] = RunningNorm(d_in + d_out)
        return self._norms[(d_in, d_out)]


def _keys_and_gradients(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                        requests: Sequence[EditRequest], modules: Sequence[str]
                        ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float]:
    """Per module: its inputs (N, in) and the mean target NLL's gradient w.r.t. its outputs
    (N, out) at the N positions that predict target tokens; and the NLL."""
    batch = target_batch(tokenizer, requests, model_device(model))
    r, p, t = batch.rows, batch.positions, batch.tokens  # (N,) each
    probes: dict[str, torch.Tensor] = {}

    def probe(output: torch.Tensor, name: str) -> torch.Tensor:
        # a zero added to the output: its gradient is the output's, and every path stays
        probes[name] = torch.zeros_like(output, requires_grad=True)
        return output + probes[name]

    with frozen(model), torch.enable_grad(), \
            Trace(model, modules, keep_inputs=True, edit=probe) as trace:
        hidden = final_hidden(model, batch.ids, batch.mask)  # (B, T, d)
        logp = F.log_softmax(logits_from_hidden(model, hidden[r, p]).float(), dim=-1)  # (N, V)
        loss = -logp.gather(1, t[:, None]).mean()
        loss.backward()
    def at_targets(x: torch.Tensor) -> torch.Tensor:  # x on its layer's device
        return x[r.to(x.device), p.to(x.device)].detach().float()

    keys = {m: at_targets(trace.inputs[m]) for m in modules}  # (N, in)
    grads = {m: at_targets(probes[m].grad) for m in modules}  # type: ignore[arg-type]  # (N, out)
    return keys, grads, float(loss.detach())
