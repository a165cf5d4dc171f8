"""Training MEND's gradient transform (see ``editors/mend.py`` for the objective).

Every training text is run once up to block ``layers[0]``; each step then runs only the blocks
from there up, three times: the edits' gradients on the unedited model, the unedited
predictions the locality KL compares with, and the edited predictions, each row with its own
edit applied (``LowRankUpdates``), so a step trains on ``edits_per_step`` independent edits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors import artifacts
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest
from editguard.lm.device import model_device

if TYPE_CHECKING:
    from editguard.editors.mend import GradientTransform, MendEditor, Row

HELDOUT_EDITS = 100  # held-out edits evaluated after training (at most)
STATS_EDITS = 64  # training edits whose raw gradient factors set the input normalisation
CHECK_TOLERANCE = 1e-4  # blocks from layers[0] up vs the full model: |difference| / largest


@dataclasses.dataclass(frozen=True)
class EditRows:
    """One training edit's rows."""

    edit: Row  # prompt + new target: the gradient is taken here, and the edit loss read
    paraphrases: tuple[Row, ...]  # + new target: edit loss
    locality: tuple[Row, ...]  # neighbours + true object, and a corpus sentence: the KL
    # held-out evaluation only: prompt + true, paraphrase + true, neighbour + new
    contrast: tuple[Row, ...] = ()


def _rows(editor: MendEditor, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
          edits: Sequence[EditRequest], sentences: Sequence[str], held: Sequence[bool]
          ) -> list[EditRows]:
    from editguard.editors.mend import sentence_rows, target_rows

    first = editor._cfg.layers[0]
    pairs: list[tuple[str, str]] = []
    layout = []
    for e, is_held in zip(edits, held, strict=True):
        mine = [(e.text, e.target_new)]
        mine += [(p, e.target_new) for p in e.paraphrase_prompts]
        mine += [(n.prompt, n.target) for n in e.neighbourhood[:2]]
        if is_held:
            mine += [(e.text, e.target_true), (e.paraphrase_prompts[0], e.target_true),
                     (e.neighbourhood[0].prompt, e.target_new)]
        layout.append((len(pairs), len(e.paraphrase_prompts), len(e.neighbourhood[:2]),
                       is_held))
        pairs += mine
    unique = sorted(set(pairs))  # neighbours recur across edits: each text runs once
    total = len(unique) + len(sentences)
    computed: list[Row] = []
    chunk = 256
    for start in range(0, len(unique), chunk):
        computed += target_rows(model, tokenizer, first, unique[start : start + chunk])
        editor.context.progress("mend network: hidden states", len(computed), total)
    of_pair = dict(zip(unique, computed, strict=True))
    rows = [of_pair[p] for p in pairs]
    corpus = sentence_rows(model, tokenizer, first, sentences) if sentences else []
    editor.context.progress("mend network: hidden states", total, total)
    out = []
    for i, (at, n_para, n_neigh, is_held) in enumerate(layout):
        para = tuple(rows[at + 1 : at + 1 + n_para])
        neigh = tuple(rows[at + 1 + n_para : at + 1 + n_para + n_neigh])
        loc = neigh + ((corpus[i % len(corpus)],) if corpus else ())
        end = at + 1 + n_para + n_neigh
        out.append(EditRows(rows[at], para, loc, tuple(rows[end : end + 3]) if is_held else ()))
    return out


def _normalisation(editor: MendEditor, model: PreTrainedModel, network: GradientTransform,
                   data: Sequence[EditRows]) -> None:
    """Set the network's input mean and std per layer from raw gradient factors."""
    from editguard.editors.mend import Rows, raw_factors

    device = model_device(model)
    samples: list[list[torch.Tensor]] = [[] for _ in editor._cfg.layers]
    for start in range(0, min(len(data), STATS_EDITS), 16):
        chunk = data[start : start + 16]
        batch = Rows.of([d.edit for d in chunk], device)
        own = torch.arange(len(chunk), device=device)
        for i, (x, d, _) in enumerate(raw_factors(model, editor._names(model),
                                                  editor._cfg.layers[0], batch, own)):
            samples[i].append(torch.cat([x, d], dim=-1))
    with torch.no_grad():
        for i, parts in enumerate(samples):
            h = torch.cat(parts)  # (N, in + out)
            network.mean[i] = h.mean(0)
            network.std[i] = h.std(0) + 1e-6


def _scored(model: PreTrainedModel, editor: MendEditor, rows: Sequence[Row],
            edited: tuple[GradientTransform, list[tuple[torch.Tensor, torch.Tensor]],
                          torch.Tensor] | None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, V) log-probabilities at the rows' scored tokens, (N,) the rows they belong to and
    (N,) the tokens, with each row's edit applied when ``edited`` = (network, factors, edit of
    each row)."""
    from editguard.editors.mend import LowRankUpdates, Rows, scored_logprobs, upper_hidden

    batch = Rows.of(rows, model_device(model))
    first = editor._cfg.layers[0]
    if edited is None:
        final = upper_hidden(model, first, batch)
    else:
        network, factors, edit_of_row = edited
        with LowRankUpdates(model, editor._names(model), network.edit_lr, factors,
                            edit_of_row.to(batch.hidden.device)):
            final = upper_hidden(model, first, batch)
    return scored_logprobs(model, final, batch), batch.rows, batch.tokens


def _step_rows(chosen: Sequence[EditRows], generator: torch.Generator
               ) -> tuple[list[Row], torch.Tensor, list[Row], torch.Tensor]:
    """For each chosen edit: its edit row and one paraphrase (edit loss), its neighbours and
    corpus sentence (locality); and which edit each row belongs to."""
    def pick(options: Sequence[Row]) -> Row:
        return options[int(torch.randint(len(options), (1,), generator=generator))]

    edit_rows, edit_owner, loc_rows, loc_owner = [], [], [], []
    for e, data in enumerate(chosen):
        edit_rows += [data.edit, pick(data.paraphrases)]
        edit_owner += [e, e]
        loc_rows += list(data.locality)
        loc_owner += [e] * len(data.locality)
    return edit_rows, torch.tensor(edit_owner), loc_rows, torch.tensor(loc_owner)


def train(editor: MendEditor, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
          edits: list[EditRequest], sentences: list[str]
          ) -> tuple[GradientTransform, artifacts.Meta]:
    from editguard.editors.mend import Rows, edit_factors, heldout

    cfg = editor._cfg
    start = time.perf_counter()
    device = model_device(model)
    held = [heldout(e) for e in edits]
    with frozen(model):
        _check_upper_blocks(editor, model, tokenizer, edits[0])
        data = _rows(editor, model, tokenizer, edits, sentences, held)
        train_set = [d for d, h in zip(data, held, strict=True) if not h]
        held_set = [d for d, h in zip(data, held, strict=True) if h][:HELDOUT_EDITS]
        if not train_set:
            raise ValueError(f"mend: none of the {len(edits)} training edits is left for "
                             "training after the held-out fifth; raise train_edits")
        d_out, d_in = editor._shape(model)
        network = editor._new_network(d_in, d_out).to(device)
        with torch.enable_grad():
            _normalisation(editor, model, network, train_set)
        rates = [network.edit_lr]
        optimiser = torch.optim.Adam([
            {"params": [p for p in network.parameters() if p is not network.edit_lr],
             "lr": cfg.lr},
            {"params": rates, "lr": cfg.lr_lr}])
        generator = torch.Generator().manual_seed(editor.context.seed)
        losses = {"edit": math.nan, "locality": math.nan}
        for step in range(cfg.steps):
            picks = torch.randint(len(train_set), (cfg.edits_per_step,), generator=generator)
            chosen = [train_set[int(i)] for i in picks]
            edit_rows, edit_owner, loc_rows, loc_owner = _step_rows(chosen, generator)
            with torch.no_grad():
                before, _, _ = _scored(model, editor, loc_rows, None)
            with torch.enable_grad():
                grads = Rows.of([d.edit for d in chosen], device)
                factors = edit_factors(model, editor._names(model), cfg.layers[0], network,
                                       grads, torch.arange(len(chosen), device=device),
                                       len(chosen))
                optimiser.zero_grad()
                logp, _, targets = _scored(model, editor, edit_rows,
                                           (network, factors, edit_owner))
                edit_loss = -logp.gather(1, targets[:, None]).mean()
                after, _, _ = _scored(model, editor, loc_rows, (network, factors, loc_owner))
                kl = (before.exp() * (before - after)).sum(-1).mean()
                loss = cfg.c_edit * edit_loss + cfg.c_loc * kl
                loss.backward()
                optimiser.step()
            losses = {"edit": float(edit_loss.detach()), "locality": float(kl.detach())}
            if step % 10 == 0 or step == cfg.steps - 1:
                editor.context.progress("mend network: training", step + 1, cfg.steps)
        network.eval()
        with torch.enable_grad():
            report = _evaluate(editor, model, network, held_set)
    meta = {"heldout": json.dumps(report), "train_edits": str(len(train_set)),
            "train_seconds": f"{time.perf_counter() - start:.1f}",
            "final_losses": json.dumps(losses)}
    return network.cpu(), meta


def _check_upper_blocks(editor: MendEditor, model: PreTrainedModel,
                        tokenizer: PreTrainedTokenizerBase, edit: EditRequest) -> None:
    """Running blocks ``layers[0]`` and up from the stored residual stream must give the full
    model's final hidden states, or training would fit another model."""
    from editguard.editors.mend import Rows, target_rows, upper_hidden
    from editguard.lm.forward import final_hidden

    first = editor._cfg.layers[0]
    with torch.no_grad():
        row = target_rows(model, tokenizer, first, [(edit.text, edit.target_new)])[0]
        batch = Rows.of([row], model_device(model))
        upper = upper_hidden(model, first, batch)
        full = final_hidden(model, batch.ids, batch.mask)
    gap = float((upper - full).abs().max())
    scale = float(full.abs().max())
    if not gap <= CHECK_TOLERANCE * max(scale, 1.0):
        raise RuntimeError(
            f"mend: running {type(model).__name__}'s blocks {first} and up on their stored input "
            f"differs from the full model by {gap:.3g} (largest hidden value {scale:.3g}): "
            "MEND's trainer cannot run this architecture's upper blocks alone (does its "
            "forward index its blocks by position?); pick another method for this model")


@torch.no_grad()
def _evaluate(editor: MendEditor, model: PreTrainedModel, network: GradientTransform,
              held: Sequence[EditRows]) -> dict[str, float]:
    """Each held-out edit applied alone: rewrite and paraphrase success (the new target beats
    the true one), and neighbourhood success (the neighbour's true object still beats the new
    target), before and after the edit; mean log-probability per token, as ``efficacy``."""
    from editguard.editors.mend import Rows, edit_factors

    cfg = editor._cfg
    if not held:
        return {"edits": 0}
    device = model_device(model)
    wins = {"rewrite": 0, "paraphrase": 0, "neighbourhood": 0, "neighbourhood_before": 0}
    for start in range(0, len(held), 8):
        chunk = held[start : start + 8]
        with torch.enable_grad():
            grads = Rows.of([d.edit for d in chunk], device)
            factors = edit_factors(model, editor._names(model), cfg.layers[0], network, grads,
                                   torch.arange(len(chunk), device=device), len(chunk))
        rows = [r for d in chunk for r in (d.edit, d.contrast[0], d.paraphrases[0],
                                            d.contrast[1], d.locality[0], d.contrast[2])]
        owner = torch.arange(len(chunk)).repeat_interleave(6)
        for which, edited in (("after", (network, factors, owner)), ("before", None)):
            logp, row_of, tokens = _scored(model, editor, rows, edited)
            per_token = logp.gather(1, tokens[:, None])[:, 0]
            sums = torch.zeros(len(rows), device=device).index_add(0, row_of, per_token)
            lengths = torch.zeros(len(rows), device=device).index_add(
                0, row_of, torch.ones_like(per_token))
            # mean log-probability per token, as the efficacy benchmark compares them; columns:
            # prompt + new, + true, paraphrase + new, + true, neighbour + own object, + new
            means = (sums / lengths).view(len(chunk), 6)
            if which == "after":
                wins["rewrite"] += int((means[:, 0] > means[:, 1]).sum())
                wins["paraphrase"] += int((means[:, 2] > means[:, 3]).sum())
                wins["neighbourhood"] += int((means[:, 4] > means[:, 5]).sum())
            else:
                wins["neighbourhood_before"] += int((means[:, 4] > means[:, 5]).sum())
    return {"edits": len(held), **{k: round(v / len(held), 4) for k, v in wins.items()}}
