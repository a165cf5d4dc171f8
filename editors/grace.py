"""GRACE: a codebook adapter at one layer (Hartvigsen et al., 2023). Not a weight edit.

A forward hook on one MLP output projection holds a codebook of (key, value, radius) entries:

    key   = the projection's input at the last token of the edit prompt          (in,)
    value = what the projection outputs there instead; trained so that the model says the new
            target (Adam, ``n_iter`` steps at ``edit_lr``; started at uniform noise, GRACE's
            "cold" init, seeded; each step runs only the target's positions through the
            blocks from the edited layer up, the rest once: ``train_value``)        (out,)
    radius epsilon, ``init_epsilon`` at first (the deferral radius)

At every position whose input lies within some entry's radius (Euclidean, nearest entry) the
projection's output is replaced by that entry's value; everywhere else the layer computes as
before, so no parameter changes. A new edit whose key is within ``init_epsilon`` + radius of an
entry with the same target widens that entry's radius to cover it; with another target both radii
shrink to half the distance (GRACE's "coverage" rule). EasyEdit reads only the last position of
each input; here every position is looked up, so teacher-forced scoring, batches and padding see
the edit wherever the edited prompt occurs (on the edit prompt itself it is the same position).
Restore removes the hook; the codebook goes back to what it was before each undone edit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditorBase
from editguard.editors.layers import arch_for, layer_field
from editguard.editors.nethook import Trace
from editguard.editors.split import SplitBatch
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest
from editguard.lm.device import model_device
from editguard.lm.forward import final_hidden, logits_from_hidden
from editguard.lm.tokens import pad_id
from editguard.settings import at_least

ALGORITHM = {"method": "GRACE (Hartvigsen et al., 2023)", "follows": "EasyEdit GRACE",
             "key": "input of the MLP output projection at the edit prompt's last token",
             "lookup": "every position; nearest key, Euclidean, replaced within its radius",
             "value_init": "cold (uniform [0, 1), seeded)", "eps_expand": "coverage"}


@dataclasses.dataclass(frozen=True)
class GraceSettings:
    layer: int = layer_field(25)
    n_iter: int = at_least(50, 1)  # value training steps per edit
    edit_lr: float = 1.0
    init_epsilon: float = 1.0  # the deferral radius of a new entry


@dataclasses.dataclass
class Codebook:
    keys: torch.Tensor  # (K, in)
    values: torch.Tensor  # (K, out)
    radii: torch.Tensor  # (K,)
    targets: list[str]

    @classmethod
    def empty(cls, d_in: int, d_out: int, device: torch.device,
              dtype: torch.dtype) -> "Codebook":
        return cls(torch.zeros((0, d_in), device=device, dtype=dtype),
                   torch.zeros((0, d_out), device=device, dtype=dtype),
                   torch.zeros((0,), device=device, dtype=torch.float32), [])

    def copy(self) -> "Codebook":
        return Codebook(self.keys.clone(), self.values.clone(), self.radii.clone(),
                        list(self.targets))

    def nearest(self, key: torch.Tensor) -> tuple[float, int] | None:
        """(distance, index) of the entry nearest to ``key`` (in,); None when empty."""
        if not self.targets:
            return None
        gap, index = torch.cdist(key[None].float(), self.keys.float())[0].min(dim=0)
        return float(gap), int(index)

    def replace(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """(B, T, in) inputs, (B, T, out) outputs -> outputs with the value of the nearest entry
        wherever an input lies within its radius."""
        if not len(self.targets):
            return outputs
        flat = inputs.reshape(-1, inputs.shape[-1]).float()  # (B*T, in)
        dist = torch.cdist(flat, self.keys.float())  # (B*T, K)
        nearest, index = dist.min(dim=1)  # (B*T,)
        hit = nearest <= self.radii[index]  # (B*T,)
        if not bool(hit.any()):
            return outputs
        flat_out = outputs.reshape(-1, outputs.shape[-1])
        chosen = self.values[index].to(outputs.dtype)  # (B*T, out)
        return torch.where(hit[:, None], chosen, flat_out).reshape(outputs.shape)


class GraceEditor(EditorBase):
    name: ClassVar[str] = "grace"
    supports_batch: ClassVar[bool] = False
    settings: ClassVar[type] = GraceSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._book: Codebook | None = None
        self._hook: torch.utils.hooks.RemovableHandle | None = None

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        return []  # nothing is written into the weights

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self._remove()
        self._book = None
        self.provenance = {"algorithm": ALGORITHM}

    def _module(self, model: PreTrainedModel) -> torch.nn.Module:
        return model.get_submodule(arch_for(model).mlp_out_name(self._cfg.layer))

    def _remove(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _checkpoint(self) -> Callable[[], None]:
        saved = None if self._book is None else self._book.copy()

        def undo() -> None:
            self._book = None if saved is None else saved.copy()
            if self._book is None or not self._book.targets:
                self._remove()

        return undo

    def _install(self, model: PreTrainedModel) -> None:
        if self._hook is not None:
            return

        def hook(module: torch.nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> Any:
            book = self._book
            return output if book is None else book.replace(args[0], output)

        self._hook = self._module(model).register_forward_hook(hook)

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: GraceSettings = self._cfg
        (request,) = requests
        device = model_device(model)
        module_name = arch_for(model).mlp_out_name(cfg.layer)
        prompt = tokenizer(request.text)["input_ids"]
        target = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + target[:-1]], device=device)  # (1, T)
        where = len(prompt) - 1  # the last prompt token: the key's position

        with torch.no_grad(), Trace(model, [module_name], keep_inputs=True,
                                    keep_outputs=True, stop=True) as trace:
            model(input_ids=ids)  # up to the codebook layer
        key = trace.inputs[module_name][0, where].detach()  # (in,)
        out = trace.outputs[module_name]  # (1, T, out)
        if self._book is None:
            self._book = Codebook.empty(key.shape[0], out.shape[-1], key.device, key.dtype)
        book = self._book
        # an entry with the same answer that this key falls near goes on training its value
        near = book.nearest(key)  # an entry this key falls within reach of, if any
        close = near if near is not None and \
            near[0] <= cfg.init_epsilon + float(book.radii[near[1]]) else None
        widened = close[1] if close is not None and \
            book.targets[close[1]] == request.target_new else None
        if widened is None:
            generator = torch.Generator().manual_seed(self.context.seed + len(book.targets))
            value = torch.rand(out.shape[-1], generator=generator).to(out.device, out.dtype)
        else:
            value = book.values[widened].detach().clone()
        nll = train_value(model, module_name, prompt, target, value, cfg.n_iter, cfg.edit_lr,
                          pad_id(tokenizer))
        entry = _admit(book, key, value.detach(), request.target_new, cfg.init_epsilon, close)
        self._install(model)
        return {"target_nll": nll, "codebook_entries": len(book.targets),
                "radius": float(book.radii[entry])}


def train_value(model: PreTrainedModel, module: str, prompt: list[int], target: list[int],
                value: torch.Tensor, n_iter: int, lr: float, pad: int,
                split: bool = True) -> float:
    """Train ``value`` (out,) in place with Adam: ``module``'s output at the prompt's last token
    is replaced by it, and the loss is the mean NLL of the target's tokens teacher-forced after
    the prompt. The final NLL.

    ``split`` runs the tokens before the prompt's last once, and the rest through the blocks
    below ``module``'s once (``SplitBatch``); a step then runs the target's few positions through
    the blocks from ``module``'s up. Without it every step runs the whole row through every
    block (same result to float rounding; kept as the reference for tests).
    """
    device = model_device(model)
    row, where = prompt + target[:-1], len(prompt) - 1  # where: the key's position
    labels = torch.tensor(target, device=device)  # (N,)
    forward: Callable[[], torch.Tensor]
    if split:
        start = arch_for(model).layer_of(module)
        batch = SplitBatch.build(model, [row], [where], pad, device, start)
        at = 0  # the tail's column 0 is position ``where``
        forward = functools.partial(batch.hidden, model)  # (1, W, d)
    else:
        ids = torch.tensor([row], device=device)  # (1, T)
        at = where
        forward = functools.partial(final_hidden, model, ids, torch.ones_like(ids))  # (1, T, d)
    label_cols = torch.arange(at, at + len(target), device=device)  # (N,)

    def replace(output: torch.Tensor, _: str) -> torch.Tensor:
        replaced = output.clone()
        replaced[0, at] = value.to(output.device, output.dtype)
        return replaced

    value.requires_grad_(True)
    optimiser = torch.optim.Adam([value], lr=lr)
    nll = float("inf")
    with frozen(model), torch.enable_grad():
        for _ in range(n_iter):
            optimiser.zero_grad()
            with Trace(model, [module], edit=replace, detach=False):
                hidden = forward()[0, label_cols]  # (N, d)
            logp = F.log_softmax(logits_from_hidden(model, hidden).float(), dim=-1)  # (N, V)
            loss = -logp.gather(1, labels[:, None]).mean()
            nll = float(loss.detach())
            loss.backward()
            optimiser.step()
    value.requires_grad_(False)
    return nll


def _admit(book: Codebook, key: torch.Tensor, value: torch.Tensor, target: str,
           init_epsilon: float, close: tuple[float, int] | None) -> int:
    """Write the trained ``value`` by GRACE's coverage rule (``close``: (distance, index) of the
    entry the key fell within reach of before this edit, or None); the entry it went to."""
    if close is not None:
        gap, n = close
        if book.targets[n] == target:  # the same answer: widen the entry to cover the key
            book.radii[n] = max(float(book.radii[n]), gap)
            book.values[n] = value.to(book.values.dtype)
            return n
        book.radii[n] = gap / 2 - 1e-5  # another answer: split the space between them
        _append(book, key, value, target, gap / 2)
    else:
        _append(book, key, value, target, init_epsilon)
    return len(book.targets) - 1


def _append(book: Codebook, key: torch.Tensor, value: torch.Tensor, target: str,
            radius: float) -> None:
    book.keys = torch.cat([book.keys, key[None].to(book.keys.dtype)])
    book.values = torch.cat([book.values, value[None].to(book.values.dtype)])
    book.radii = torch.cat([book.radii, torch.tensor([radius], device=book.radii.device)])
    book.targets.append(target)
