"""The target vector of an edit: the hidden value that makes the model say the new object.

ROME optimises it at the MLP output of its layer, MEMIT at the residual stream after its last
layer; the optimisation is the same. A vector ``delta`` is added to a module's output at the
subject's last token, and trained so that every context-template version of the prompt ends in
``target_new``, while a KL term keeps the model's next-token distribution after
"<subject> is a" where it was (the subject's other properties) and a decay term keeps
``delta`` small.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.nethook import Trace
from editguard.editors.prompts import encode_with_subject, fill
from editguard.editors.stats import StatsSpec
from editguard.edits.request import EditRequest
from editguard.lm.device import model_device
from editguard.lm.forward import final_hidden, logits_from_hidden
from editguard.lm.tokens import pad_id, right_pad
from editguard.settings import at_least


@dataclasses.dataclass(frozen=True)
class ValueSettings:
    steps: int
    lr: float
    weight_decay: float
    kl_factor: float
    clamp_norm_factor: float
    early_stop_nll: float


@dataclasses.dataclass(frozen=True)
class RewriteSettings:
    """Hyperparameters ROME and MEMIT share: context templates, the value optimisation and the
    key statistics."""

    context_templates: int = 5
    context_length: int = at_least(5, 1)
    v_steps: int = at_least(20, 1)
    v_lr: float = 0.5
    v_weight_decay: float = 1e-3
    kl_factor: float = 0.0625
    clamp_norm_factor: float = 4.0
    early_stop_nll: float = 0.05
    stats_corpus: str = "wikipedia-en"
    stats_tokens: int = at_least(100_000, 1)
    stats_seq_len: int = at_least(256, 1)

    def values(self) -> ValueSettings:
        return ValueSettings(self.v_steps, self.v_lr, self.v_weight_decay, self.kl_factor,
                             self.clamp_norm_factor, self.early_stop_nll)

    def stats(self) -> StatsSpec:
        return StatsSpec(self.stats_corpus, self.stats_tokens, self.stats_seq_len)


@dataclasses.dataclass(frozen=True)
class Value:
    init: torch.Tensor  # (d,) the module's output at the subject, plain prompt, before the edit
    delta: torch.Tensor  # (d,) what to add to it
    nll: float  # final mean NLL of target_new per token
    steps: int


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Turn off parameter gradients for the block (only the delta is trained)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def optimise_value(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, module: str,
                   request: EditRequest, templates: Sequence[str],
                   settings: ValueSettings) -> Value:
    device = model_device(model)
    target_ids = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
    rows: list[list[int]] = []
    lookups: list[int] = []
    label_spans: list[tuple[int, int]] = []
    for template in templates:  # rewriting rows: prompt + target[:-1], labels on the target
        ids, where = encode_with_subject(tokenizer, fill(template, request.text), request.subject)
        rows.append(ids + target_ids[:-1])
        lookups.append(where)
        label_spans.append((len(ids) - 1, len(ids) - 1 + len(target_ids)))
    kl_text = f"{request.subject} is a"
    kl_ids, kl_where = encode_with_subject(tokenizer, kl_text, request.subject)
    rows.append(kl_ids)
    lookups.append(kl_where)
    kl_row, kl_pos = len(rows) - 1, len(kl_ids) - 1

    input_ids, mask = right_pad(rows, pad_id(tokenizer), device)  # (B, T)
    row_index = torch.arange(len(rows), device=device)  # (B,)
    subject_pos = torch.tensor(lookups, device=device)  # (B,)
    n_rewrite = len(templates)
    label_rows = torch.cat([torch.full((b - a,), i) for i, (a, b) in enumerate(label_spans)])
    label_pos = torch.cat([torch.arange(a, b) for a, b in label_spans])
    label_tok = torch.tensor(target_ids * n_rewrite)

    score_rows = torch.cat([label_rows, torch.tensor([kl_row])]).to(device)  # (N + 1,)
    score_pos = torch.cat([label_pos, torch.tensor([kl_pos])]).to(device)

    def log_probs() -> torch.Tensor:
        hidden = final_hidden(model, input_ids, mask)  # (B, T, d)
        logits = logits_from_hidden(model, hidden[score_rows, score_pos])  # (N + 1, V)
        return F.log_softmax(logits.float(), dim=-1)

    with torch.no_grad(), Trace(model, [module], keep_outputs=True) as trace:
        kl_ref = log_probs()[-1]  # (V,)
    init = trace.outputs[module][0, lookups[0]].float().clone()  # (d,)

    delta = torch.zeros_like(init, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=settings.lr)
    max_norm = settings.clamp_norm_factor * float(init.norm())

    def add_delta(output: torch.Tensor, _: str) -> torch.Tensor:
        # output: (B, T, d); add delta at each row's subject position
        out = output.clone()
        out[row_index, subject_pos] = out[row_index, subject_pos] + delta.to(out.dtype)
        return out

    nll = math.inf
    step = 0
    with frozen(model), torch.enable_grad():
        for step in range(1, settings.steps + 1):
            optimiser.zero_grad()
            with Trace(model, [module], edit=add_delta, detach=False):
                logp = log_probs()  # (N + 1, V)
            token_nll = -logp[:-1].gather(1, label_tok[:, None].to(device)).squeeze(1)  # (N,)
            nll_t = token_nll.mean()
            kl = F.kl_div(logp[-1], kl_ref, log_target=True, reduction="sum")
            decay = settings.weight_decay * delta.norm() ** 2 / init.norm() ** 2
            loss = nll_t + settings.kl_factor * kl + decay
            nll = float(nll_t.detach())
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"value optimisation diverged for edit {request.case_id!r}")
            if nll < settings.early_stop_nll:
                break
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                norm = delta.norm()
                if norm > max_norm:
                    delta.mul_(max_norm / norm)
    return Value(init=init, delta=delta.detach().clone(), nll=nll, steps=step)
