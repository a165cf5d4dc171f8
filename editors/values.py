"""The target vector of an edit: the hidden value that makes the model say the new object.

ROME optimises it at the MLP output of its layer, MEMIT at the residual stream after its last
layer; the optimisation is the same and follows the reference code of both papers (ROME's
``compute_v``, MEMIT's ``compute_z``). A vector ``delta`` is added to a module's output at the
subject's last token of every prompt, and trained with Adam on

    loss = NLL(target_new | each context-template version of the prompt)
         + kl_factor * KL(p_current || p_initial)        at the subject's last token of
                                                          the essence prompt "<subject> is a"
         + weight_decay * ||delta|| / ||v_init||^2

(the KL keeps what the model says about the subject in general, the decay keeps ``delta``
small relative to the original value), with ``delta`` projected back into the ball of radius
clamp_norm_factor * ||v_init|| after each step. Like the reference, the optimisation stops as
soon as the whole loss is below ``early_stop_loss``, and the last of ``v_steps`` iterations
only evaluates (``v_steps`` - 1 updates at most).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.layers import arch_for
from editguard.editors.nethook import Trace
from editguard.editors.prompts import encode_with_subject, fill
from editguard.editors.split import SplitBatch
from editguard.editors.stats import StatsSpec
from editguard.edits.request import EditRequest
from editguard.lm.device import model_device
from editguard.lm.forward import final_hidden, logits_from_hidden
from editguard.lm.tokens import pad_id, right_pad
from editguard.settings import at_least


# What the value optimisation does, recorded with every ROME / MEMIT result.
VALUE_OPTIMISATION = {
    "nll": "mean over context templates of the target's token NLL",
    "kl": "KL(current || initial) at the subject's last token of '<subject> is a'",
    "weight_decay": "v_weight_decay * ||delta|| / ||v_init||^2",
    "early_stop": "whole loss < early_stop_loss; the last of v_steps iterations only evaluates",
    "clamp": "||delta|| <= clamp_norm_factor * ||v_init||",
}


@dataclasses.dataclass(frozen=True)
class ValueSettings:
    steps: int
    lr: float
    weight_decay: float
    kl_factor: float
    clamp_norm_factor: float
    early_stop_loss: float
    # PMET's rules once the new target is the argmax at every target position: the NLL term is
    # weighed by this factor in the following steps, and the optimisation stops when the
    # (weighted) KL term is at most ``argmax_stop_kl`` (None: no such stop)
    argmax_nll_factor: float = 1.0
    argmax_stop_kl: float | None = None


@dataclasses.dataclass(frozen=True)
class RewriteSettings:
    """Hyperparameters ROME and MEMIT share: context templates, the value optimisation and the
    key statistics."""

    context_templates: int = 5  # model-written prefixes besides the plain prompt
    context_length: int = at_least(10, 1)  # tokens per prefix (MEMIT's reference: 10)
    v_steps: int = at_least(20, 1)
    v_lr: float = 0.5
    v_weight_decay: float = 1e-3
    kl_factor: float = 0.0625
    clamp_norm_factor: float = 4.0
    early_stop_loss: float = 0.05  # the reference's 5e-2, on the whole loss
    stats_corpus: str = "wikipedia-en"
    stats_tokens: int = at_least(100_000, 1)
    stats_seq_len: int = at_least(256, 1)

    def values(self) -> ValueSettings:
        return ValueSettings(self.v_steps, self.v_lr, self.v_weight_decay, self.kl_factor,
                             self.clamp_norm_factor, self.early_stop_loss)

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


def essence_prompt(tokenizer: PreTrainedTokenizerBase, subject: str) -> tuple[list[int], int]:
    """Token ids of "<subject> is a" and where its KL term is read: the subject's last token,
    as in the reference (not the prompt's final token)."""
    return encode_with_subject(tokenizer, f"{subject} is a", subject)


def kl_term(current: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """KL(current || initial) of two (V,) log-distributions: sum p_cur (log p_cur - log p_init),
    the direction of the reference's ``kl_div(init, current, log_target=True)``."""
    return F.kl_div(initial, current, log_target=True, reduction="sum")


def decay_term(delta: torch.Tensor, init: torch.Tensor, weight_decay: float) -> torch.Tensor:
    """weight_decay * ||delta|| / ||v_init||^2 (the reference's norm, not its square, on top)."""
    return weight_decay * delta.norm() / init.norm() ** 2


def optimise_value(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, module: str,
                   request: EditRequest, templates: Sequence[str],
                   settings: ValueSettings, split: bool = True) -> Value:
    """The delta at ``module``'s output that makes the model say ``request.target_new``.

    ``split`` runs each prompt's tokens before the subject once, and the rest of it through the
    blocks below ``module``'s once (``SplitBatch``); without it every step runs the whole
    prompts through every block, as the reference code does (same result to float rounding,
    several times slower; kept as the reference for tests and perf.editing).
    """
    return optimise_values(model, tokenizer, [module], request, templates, settings, split)[0]


def optimise_values(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    modules: Sequence[str], request: EditRequest, templates: Sequence[str],
                    settings: ValueSettings, split: bool = True) -> list[Value]:
    """One delta per module's output, trained together (PMET optimises its attention and MLP
    outputs jointly): the loss has each delta's weight decay, each is clamped against its own
    module's initial output. One module: ``optimise_value``."""
    return optimise_requests(model, tokenizer, modules, [request], templates, settings, split)[0]


def edit_rows(tokenizer: PreTrainedTokenizerBase, request: EditRequest,
              templates: Sequence[str], whole_kl_prompt: bool = False
              ) -> tuple[list[int], list[list[int]], list[int]]:
    """One request's rows of the value optimisation: the new target's token ids; the rows, each
    template's prompt followed by the target but its last token, then the KL prompt
    "<subject> is a"; and per row the position of the subject's last token.

    The KL term is read at the subject's last token, which attends only to what precedes it, so
    the KL row ends there (" is a" changes nothing the loss reads; the reference code runs it,
    ``whole_kl_prompt`` keeps it). On a one-token target that is 2 tokens per row from the
    subject on instead of 3: a third fewer token rows in every step.
    """
    target = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
    rows: list[list[int]] = []
    subject: list[int] = []
    for template in templates:
        ids, where = encode_with_subject(tokenizer, fill(template, request.text), request.subject)
        rows.append(ids + target[:-1])
        subject.append(where)
    kl_ids, kl_where = essence_prompt(tokenizer, request.subject)
    if not whole_kl_prompt:
        kl_ids = kl_ids[: kl_where + 1]
    return target, rows + [kl_ids], subject + [kl_where]


# Requests whose value optimisations share one batch (``optimise_requests``): a CPU step costs
# about as much for 8 requests as for one (the weights are read once), while the activations
# kept for the backward pass grow with the batch.
REQUESTS_PER_BATCH = 8


def optimise_requests(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      modules: Sequence[str], requests: Sequence[EditRequest],
                      templates: Sequence[str], settings: ValueSettings, split: bool = True,
                      per_batch: int = REQUESTS_PER_BATCH) -> list[list[Value]]:
    """``optimise_values`` for several requests of one model state (MEMIT's batch), up to
    ``per_batch`` of them in one forward and backward pass per step.

    Each request's rows carry only its own deltas and its loss reads only its own rows, and
    every delta has its own Adam state, so each result is the one its request gets alone (to
    float rounding): a request whose loss is below ``early_stop_loss`` stops there, its deltas
    take no further step, and the others go on.
    """
    out: list[list[Value]] = []
    for start in range(0, len(requests), per_batch):
        out += _optimise_batch(model, tokenizer, modules, requests[start : start + per_batch],
                               templates, settings, split)
    return out


def _optimise_batch(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    modules: Sequence[str], requests: Sequence[EditRequest],
                    templates: Sequence[str], settings: ValueSettings,
                    split: bool) -> list[list[Value]]:
    device = model_device(model)
    n_req, n_rewrite = len(requests), len(templates)
    rows: list[list[int]] = []
    lookups: list[int] = []
    label_rows: list[int] = []  # per target token: its row, its position, its token id
    label_pos: list[int] = []
    label_tok: list[int] = []
    label_owner: list[int] = []  # the request each target token belongs to
    kl_rows: list[int] = []
    kl_pos: list[int] = []
    for r, request in enumerate(requests):  # rows of request r: its templates, then its KL row
        target_ids, own_rows, own_subject = edit_rows(tokenizer, request, templates)
        for ids, where in zip(own_rows[:-1], own_subject[:-1]):  # labels on the target
            first = len(ids) - len(target_ids)  # the prompt's last token: predicts target[0]
            label_rows += [len(rows)] * len(target_ids)
            label_pos += range(first, first + len(target_ids))
            label_tok += target_ids
            label_owner += [r] * len(target_ids)
            rows.append(ids)
            lookups.append(where)
        kl_rows.append(len(rows))
        kl_pos.append(own_subject[-1])
        rows.append(own_rows[-1])
        lookups.append(own_subject[-1])
    n_labels = len(label_tok)

    row_index = torch.arange(len(rows), device=device)  # (B,)
    row_owner = torch.arange(n_req).repeat_interleave(n_rewrite + 1).to(device)  # (B,)
    subject_pos = torch.tensor(lookups, device=device)  # (B,)
    score_rows = torch.tensor(label_rows + kl_rows, device=device)  # (N + R,)
    score_pos = torch.tensor(label_pos + kl_pos, device=device)
    owner = torch.tensor(label_owner, device=device)  # (N,)
    labels = torch.tensor(label_tok, device=device)[:, None]  # (N, 1)

    forward: Callable[[], torch.Tensor]
    if split:  # columns count from each row's subject token
        start = min(arch_for(model).layer_of(m) for m in modules)  # blocks below: once
        batch = SplitBatch.build(model, rows, lookups, pad_id(tokenizer), device, start)
        score_pos = score_pos - subject_pos[score_rows]
        subject_pos = torch.zeros_like(subject_pos)
        forward = functools.partial(batch.hidden, model)  # (B, W, d)
    else:
        input_ids, mask = right_pad(rows, pad_id(tokenizer), device)  # (B, T)
        forward = functools.partial(final_hidden, model, input_ids, mask)  # (B, T, d)

    def log_probs() -> torch.Tensor:
        hidden = forward()
        logits = logits_from_hidden(model, hidden[score_rows, score_pos])  # (N + R, V)
        return F.log_softmax(logits.float(), dim=-1)

    # Step 1 runs with every delta at zero, so its forward is the unedited model's: it gives the
    # initial values (each module's output at the plain prompt's subject token, where the deltas
    # are created) and the KL's reference distributions, as in the reference code; no separate
    # forward. Each (d,) delta lives on its module's device (a sharded model has several).
    plain_rows = [r * (n_rewrite + 1) for r in range(n_req)]  # row 0 of each: the plain prompt
    inits: list[dict[str, torch.Tensor]] = [{} for _ in range(n_req)]
    deltas: list[dict[str, torch.Tensor]] = [{} for _ in range(n_req)]

    def add_delta(output: torch.Tensor, name: str) -> torch.Tensor:
        # output: (B, T, d); add each request's delta at its rows' subject positions
        if name not in deltas[0]:  # step 1
            for r, row in enumerate(plain_rows):
                inits[r][name] = output[row, int(subject_pos[row])].detach().float().clone()
                deltas[r][name] = torch.zeros_like(inits[r][name], requires_grad=True)
        out = output.clone()
        rows_at, cols = row_index.to(out.device), subject_pos.to(out.device)
        stacked = torch.stack([per[name] for per in deltas]).to(out.dtype)  # (R, d)
        out[rows_at, cols] = out[rows_at, cols] + stacked[row_owner.to(out.device)]
        return out

    nll = [math.inf] * n_req
    stopped_at = [0] * n_req
    active = [True] * n_req
    nll_factor = [1.0] * n_req
    owner_masks = [owner == r for r in range(n_req)]
    optimiser: torch.optim.Adam | None = None
    max_norms: list[dict[str, float]] = []
    kl_ref = torch.empty(0)
    with frozen(model), torch.enable_grad():
        for step in range(1, settings.steps + 1):
            if optimiser is not None:
                optimiser.zero_grad()
            with Trace(model, modules, edit=add_delta, detach=False):
                logp = log_probs()  # (N + R, V)
            if optimiser is None:  # step 1: the deltas exist now
                kl_ref = logp[n_labels:].detach()  # (R, V)
                optimiser = torch.optim.Adam([d for per in deltas for d in per.values()],
                                             lr=settings.lr)
                max_norms = [{m: settings.clamp_norm_factor * float(init.norm())
                              for m, init in per.items()} for per in inits]
            token_nll = -logp[:n_labels].gather(1, labels).squeeze(1)  # (N,)
            total = torch.zeros((), device=logp.device)
            for r in range(n_req):
                if not active[r]:
                    continue
                # every template has the same target: the reference's mean over tokens
                nll_t = token_nll[owner_masks[r]].mean()
                kl_t = settings.kl_factor * kl_term(logp[n_labels + r], kl_ref[r])
                loss = nll_factor[r] * nll_t + kl_t
                for m, delta in deltas[r].items():
                    loss = loss + decay_term(delta, inits[r][m],
                                             settings.weight_decay).to(loss.device)
                nll[r] = float(nll_t.detach())
                stopped_at[r] = step
                if not math.isfinite(float(loss.detach())):
                    raise FloatingPointError("value optimisation diverged for edit "
                                             f"{requests[r].case_id!r}")
                if float(loss.detach()) < settings.early_stop_loss or step == settings.steps:
                    active[r] = False  # the last iteration only evaluates, as in the reference
                    continue
                if settings.argmax_nll_factor != 1.0 or settings.argmax_stop_kl is not None:
                    mine = owner_masks[r]
                    argmax = bool((logp[:n_labels][mine].argmax(dim=-1)
                                   == labels[mine, 0]).all())
                    nll_factor[r] = settings.argmax_nll_factor if argmax else 1.0
                    if argmax and settings.argmax_stop_kl is not None \
                            and float(kl_t.detach()) <= settings.argmax_stop_kl:
                        active[r] = False
                        continue
                total = total + loss
            if not any(active):
                break
            total.backward()
            for r in range(n_req):
                for delta in deltas[r].values():
                    if not active[r]:
                        delta.grad = None  # a stopped request's deltas take no more steps
            optimiser.step()
            with torch.no_grad():
                for r in range(n_req):
                    for m, delta in deltas[r].items():
                        norm = delta.norm()
                        if norm > max_norms[r][m]:
                            delta.mul_(max_norms[r][m] / norm)
    return [[Value(init=inits[r][m], delta=deltas[r][m].detach().clone(), nll=nll[r],
                   steps=stopped_at[r]) for m in modules] for r in range(n_req)]
