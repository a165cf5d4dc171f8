"""MEND: a trained network turns an edit's gradient into a weight update (Mitchell et al., 2022).

The gradient of a loss with respect to a linear layer's weight (out, in) is a sum of rank-one
terms, one per token t: ``delta_t x_t^T``, where x_t is the layer's input and delta_t the
gradient at its output. MEND transforms each pair before summing:

    h_t      = [x_t, delta_t]                                 (in + out,)
    h_t      = ((h_t - mean_l) / std_l) * scale_l + shift_l    per edited layer l
    h_t      = h_t + B_k relu(A_k h_t), k = 1, 2               shared, rank ``rank``
    u_t, v_t = h_t[:in], h_t[in:]
    W_l     -= lr_l * sum_t v_t u_t^T                          (out, in)

B1 and B2 start at zero, so the untrained network is a normalised gradient step. Here it edits
the MLP output matrices of ``layers`` (MEND's GPT recipes edit both MLP matrices of the last
three blocks; editguard edits the matrix every family names, see ``editors/layers.py``).

Training (the "meta-training" of the paper), on counterfactual edits of the GeoNames held-out
pool, which shares no subject with the suite's edits (``editguard.edits.facts.split_facts``).
Each step takes ``edits_per_step`` edits, computes each one's gradient factors on the unedited
model, applies each edit to its own rows only, and minimises

    c_edit * NLL(new target | prompt, paraphrase)  +  c_loc * KL(unedited || edited)

where the KL is read where a neighbour (same relation, other subject) predicts its true object
and at the last tokens of a corpus sentence. Blocks below ``layers[0]`` never change, so their
output for every training row is computed once; a step runs only the blocks from ``layers[0]``
up (checked against the full model before training). One training edit in five (by a hash of its
id) is held out; after training each (at most 100) is applied alone and its rewrite, paraphrase
and neighbourhood success are reported. The network is cached in ``<cache>/mend/<fingerprint[:16]>/``
keyed by the model fingerprint, the settings, the seed and a digest of the training rows, with a
checksum, under a file lock (parallel workers train it once).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard import integrity
from editguard.editors import artifacts
from editguard.editors.base import EditorBase
from editguard.editors.blocks import starting_at
from editguard.editors.layers import (arch_for, check_increasing, from_out_in, layer_field,
                                      to_out_in)
from editguard.editors.nethook import Trace
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest
from editguard.edits.sampling import sample, unit_hash
from editguard.lm.corpus import first_sentences
from editguard.lm.device import model_device
from editguard.settings import at_least

ALGORITHM = {"method": "MEND (Mitchell et al., 2022)",
             "edited": "MLP output matrices of the configured layers",
             "training_data": "counterfactual edits of the GeoNames held-out pool"}
VERSION = "2"  # of the training recipe: part of the artifact key
CORPUS_POSITIONS = 4  # a corpus sentence's last positions that the locality KL reads


@dataclasses.dataclass(frozen=True)
class MendSettings:
    layers: tuple[int, ...] = layer_field((27, 28, 29))  # MLP output matrices MEND edits
    rank: int = at_least(512, 1)  # hidden width of the gradient transform's two blocks
    steps: int = at_least(1500, 1)  # training steps
    edits_per_step: int = at_least(4, 1)
    lr: float = 1e-4  # Adam, the network's weights
    lr_lr: float = 1e-4  # Adam, the per-layer step sizes
    edit_lr: float = 1e-4  # initial per-layer step size
    c_edit: float = 0.1  # weight of the edit loss (the locality KL has weight c_loc)
    c_loc: float = 1.0
    train_edits: int = at_least(0, 0)  # training edits from the held-out pool (0 = all)
    corpus: str = "wikipedia-en"  # sentences the locality KL also reads


class GradientTransform(torch.nn.Module):
    """The trained network: (x, delta) token factors of layer ``l`` -> (u, v)."""

    mean: torch.Tensor  # (layers, in + out) buffers: the input normalisation
    std: torch.Tensor

    def __init__(self, d_in: int, d_out: int, n_layers: int, rank: int, edit_lr: float) -> None:
        super().__init__()
        width = d_in + d_out
        self.d_in = d_in
        self.register_buffer("mean", torch.zeros(n_layers, width))
        self.register_buffer("std", torch.ones(n_layers, width))
        self.scale = torch.nn.Parameter(torch.ones(n_layers, width))
        self.shift = torch.nn.Parameter(torch.zeros(n_layers, width))
        ups = [torch.nn.Linear(rank, width) for _ in range(2)]
        for up in ups:  # the residual blocks start as the identity
            torch.nn.init.zeros_(up.weight)
            torch.nn.init.zeros_(up.bias)
        self.down = torch.nn.ModuleList(torch.nn.Linear(width, rank) for _ in range(2))
        self.up = torch.nn.ModuleList(ups)
        self.edit_lr = torch.nn.Parameter(torch.full((n_layers,), float(edit_lr)))

    def forward(self, x: torch.Tensor, delta: torch.Tensor,
                layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, in), (N, out) -> (N, in), (N, out) factors of the update of edited layer
        ``layer`` (its index in ``layers``)."""
        h = torch.cat([x, delta], dim=-1).float()  # (N, in + out)
        h = (h - self.mean[layer]) / self.std[layer] * self.scale[layer] + self.shift[layer]
        for down, up in zip(self.down, self.up, strict=True):
            h = h + up(torch.relu(down(h)))
        return h[:, : self.d_in], h[:, self.d_in :]


@dataclasses.dataclass(frozen=True)
class Row:
    """One training text: its hidden state entering block ``layers[0]`` and what is scored."""

    ids: tuple[int, ...]  # (T,)
    hidden: torch.Tensor  # (T, d)
    positions: tuple[int, ...]  # where the scored next tokens are predicted
    tokens: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Rows:
    """Rows padded into one batch."""

    ids: torch.Tensor  # (R, T)
    hidden: torch.Tensor  # (R, T, d)
    mask: torch.Tensor  # (R, T)
    rows: torch.Tensor  # (N,) one entry per scored token
    positions: torch.Tensor  # (N,)
    tokens: torch.Tensor  # (N,)

    @classmethod
    def of(cls, rows: Sequence[Row], device: torch.device) -> Rows:
        width = max(r.hidden.shape[0] for r in rows)
        hidden = torch.zeros(len(rows), width, rows[0].hidden.shape[1], device=device)
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        for i, row in enumerate(rows):
            hidden[i, : row.hidden.shape[0]] = row.hidden
            mask[i, : row.hidden.shape[0]] = 1
            ids[i, : len(row.ids)] = torch.tensor(row.ids, device=device)
        index = [(i, p, t) for i, r in enumerate(rows) for p, t in zip(r.positions, r.tokens)]
        r_, p_, t_ = (torch.tensor(c, device=device) for c in zip(*index))
        return cls(ids, hidden, mask, r_, p_, t_)


def upper_hidden(model: PreTrainedModel, first: int, batch: Rows,
                 hidden: torch.Tensor | None = None) -> torch.Tensor:
    """(R, T, d) final hidden states of ``batch`` from its residual stream entering block
    ``first`` (``hidden``, or the stored one): only that block and those above it run
    (``blocks.starting_at``)."""
    stream = batch.hidden if hidden is None else hidden  # (R, T, d)
    with starting_at(model, first, stream):
        out = model.base_model(input_ids=batch.ids, attention_mask=batch.mask, use_cache=False)
    return out.last_hidden_state.to(stream.device)  # (R, T, d)


@torch.no_grad()
def entering_hidden(model: PreTrainedModel, first: int, rows: Sequence[Sequence[int]],
                    batch_size: int = 32) -> list[torch.Tensor]:
    """Per token row, the (T, d) residual stream entering block ``first`` (rows batched with
    right padding, which a causal model's earlier positions never see)."""
    from editguard.lm.tokens import right_pad

    device = model_device(model)
    name = arch_for(model).block_name(first)
    out: list[torch.Tensor] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        ids, mask = right_pad(chunk, 0, device)  # (B, T)
        with Trace(model, [name], keep_inputs=True, stop=True) as trace:
            model(input_ids=ids, attention_mask=mask, use_cache=False)
        hidden = trace.inputs[name].float().to(device)  # (B, T, d)
        out += [hidden[i, : len(r)].clone() for i, r in enumerate(chunk)]
    return out


def scored_logprobs(model: PreTrainedModel, final: torch.Tensor, batch: Rows) -> torch.Tensor:
    """(N, V) log-probabilities where ``batch`` scores a token."""
    from editguard.lm.forward import logits_from_hidden

    states = final[batch.rows, batch.positions]  # (N, d)
    return F.log_softmax(logits_from_hidden(model, states).float(), dim=-1)


class LowRankUpdates:
    """Adds each row's own edit to the edited layers' outputs, without touching the weights:
    out += -lr_l * (x @ U^T) @ V for U (n, in), V (n, out) of that row's edit."""

    def __init__(self, model: PreTrainedModel, names: Sequence[str], lrs: torch.Tensor,
                 factors: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 edit_of_row: torch.Tensor) -> None:
        self._model, self._names, self._lrs = model, list(names), lrs
        self._factors = factors  # per layer: U (E, n, in), V (E, n, out), zero-padded over n
        self._edit_of_row = edit_of_row  # (R,)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> LowRankUpdates:
        for i, name in enumerate(self._names):
            self._handles.append(self._model.get_submodule(name).register_forward_hook(
                self._hook(i)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    def _hook(self, i: int) -> Any:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> Any:
            x = args[0].float()  # (R, T, in), on this layer's device (a sharded model's too)
            u, v = (f.to(x.device) for f in self._factors[i])
            rows = self._edit_of_row.to(x.device)
            coeff = torch.einsum("rti,rni->rtn", x, u[rows])  # (R, T, n)
            change = torch.einsum("rtn,rno->rto", coeff, v[rows])  # (R, T, out)
            return output - (self._lrs[i].to(x.device) * change).to(output.dtype)

        return hook


class MendEditor(EditorBase):
    name: ClassVar[str] = "mend"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = MendSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._network: GradientTransform | None = None

    def _validate(self, cfg: Any) -> None:
        check_increasing(self.name, tuple(cfg.layers))
        for key in ("lr", "lr_lr", "edit_lr"):
            if not getattr(cfg, key) > 0:
                raise ValueError(f"mend {key} {getattr(cfg, key)} must be positive "
                                 f"(--method-opt mend.{key}=1e-4)")
        if cfg.c_edit < 0 or cfg.c_loc < 0 or cfg.c_edit + cfg.c_loc == 0:
            raise ValueError(f"mend loss weights c_edit={cfg.c_edit}, c_loc={cfg.c_loc} must be "
                             ">= 0 and not both 0 (defaults 0.1 and 1.0)")

    def _names(self, model: PreTrainedModel) -> list[str]:
        spec = arch_for(model)
        return [spec.mlp_out_name(layer) for layer in self._cfg.layers]

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        return [name + ".weight" for name in self._names(model)]

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        network, meta, status = self._load_or_train(model, tokenizer)
        self._network = network
        self.provenance = {"algorithm": ALGORITHM, "network": {
            "cache": status, "key": meta["key"], "heldout": json.loads(meta["heldout"]),
            "train_edits": int(meta["train_edits"]),
            "train_seconds": float(meta["train_seconds"]), "training_data": meta["data"],
            "final_losses": json.loads(meta["final_losses"])}}

    # -- an edit ------------------------------------------------------------------------------
    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: MendSettings = self._cfg
        network = self._network
        if network is None:
            raise RuntimeError("mend: prepare() did not build the network")
        spec = arch_for(model)
        device = model_device(model)
        batch = Rows.of(target_rows(model, tokenizer, cfg.layers[0],
                                    [(r.text, r.target_new) for r in requests]), device)
        with frozen(model), torch.enable_grad():
            one = torch.zeros(batch.mask.shape[0], dtype=torch.long, device=device)
            factors = edit_factors(model, self._names(model), cfg.layers[0], network, batch,
                                   one, 1)  # a batch is one summed edit
        norms = {}
        with torch.no_grad():
            for i, name in enumerate(self._names(model)):
                u, v = factors[i]  # (1, n, in), (1, n, out)
                update = -network.edit_lr[i] * (v[0].T @ u[0])  # (out, in)
                weight = model.get_parameter(name + ".weight")
                weight.add_(from_out_in(update, spec).to(weight.device, weight.dtype))
                norms[name] = float(update.norm())
        return {"update_norms": norms}

    # -- the network: cached, or trained here --------------------------------------------------
    def _load_or_train(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
                       ) -> tuple[GradientTransform, artifacts.Meta, str]:
        cfg: MendSettings = self._cfg
        context = self.context
        edits = self._training_edits()
        sentences = first_sentences(context.corpus(cfg.corpus).texts, len(edits))
        texts = [[e.text, e.target_new, e.target_true, list(e.paraphrase_prompts),
                  [[n.prompt, n.target] for n in e.neighbourhood]] for e in edits]
        data = integrity.sha256_hex(json.dumps([texts, sentences]).encode())
        key = integrity.sha256_hex(json.dumps({
            "version": VERSION, "fingerprint": context.fingerprint, "seed": context.seed,
            "settings": dataclasses.asdict(cfg), "data": data}, sort_keys=True).encode())
        folder = context.cache_dir / "mend" / context.fingerprint[:16]
        d_out, d_in = self._shape(model)

        def train() -> tuple[artifacts.Tensors, artifacts.Meta]:
            network, meta = self._train(model, tokenizer, edits, sentences)
            data_note = (f"{len(edits)} GeoNames held-out edits, {len(sentences)} sentences "
                         f"of {cfg.corpus}")
            return dict(network.state_dict()), {**meta, "data": data_note}

        def check(tensors: artifacts.Tensors, meta: artifacts.Meta) -> None:
            json.loads(meta["heldout"]), json.loads(meta["final_losses"])
            int(meta["train_edits"]), float(meta["train_seconds"])
            fresh = self._new_network(d_in, d_out)
            fresh.load_state_dict(tensors)  # raises on a missing key or a wrong shape

        tensors, meta, status = artifacts.load_or_train(folder, "network", key,
                                                        "MEND network", train, check)
        network = self._new_network(d_in, d_out)
        network.load_state_dict(tensors)
        return network.to(model_device(model)).eval(), meta, status

    def _shape(self, model: PreTrainedModel) -> tuple[int, int]:
        weight = model.get_parameter(self._parameter_names(model)[0])
        out, inp = to_out_in(weight, arch_for(model)).shape
        return int(out), int(inp)

    def _new_network(self, d_in: int, d_out: int) -> GradientTransform:
        cfg: MendSettings = self._cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.context.seed)
            return GradientTransform(d_in, d_out, len(cfg.layers), cfg.rank, cfg.edit_lr)

    def _training_edits(self) -> list[EditRequest]:
        from editguard.edits.facts import build_edits
        from editguard.edits.geonames import heldout_facts

        pool = heldout_facts(self.context.seed)
        edits = build_edits(pool, self.context.seed, neighbours=pool)
        edits = [e for e in edits if e.paraphrase_prompts and e.neighbourhood]
        count = self._cfg.train_edits
        return sample(edits, count, self.context.seed) if count else edits

    def _train(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               edits: list[EditRequest], sentences: list[str]
               ) -> tuple[GradientTransform, artifacts.Meta]:
        from editguard.editors.mend_training import train

        return train(self, model, tokenizer, edits, sentences)


def target_rows(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, first: int,
                pairs: Sequence[tuple[str, str]]) -> list[Row]:
    """Each prompt followed by its target, scored where each target token is predicted."""
    prompts = [tokenizer(p)["input_ids"] for p, _ in pairs]
    answers = [tokenizer(" " + t, add_special_tokens=False)["input_ids"] for _, t in pairs]
    ids = [p + a[:-1] for p, a in zip(prompts, answers, strict=True)]
    hidden = entering_hidden(model, first, ids)
    return [Row(tuple(r), h, tuple(range(len(p) - 1, len(r))), tuple(a))
            for h, p, a, r in zip(hidden, prompts, answers, ids, strict=True)]


def sentence_rows(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, first: int,
                  sentences: Sequence[str], max_tokens: int = 32) -> list[Row]:
    """Corpus sentences, each scored at its last ``CORPUS_POSITIONS`` next tokens."""
    ids = [tokenizer(s)["input_ids"][:max_tokens] for s in sentences]
    hidden = entering_hidden(model, first, [i[:-1] for i in ids])
    rows = []
    for h, row in zip(hidden, ids, strict=True):
        last = range(max(len(row) - 1 - CORPUS_POSITIONS, 0), len(row) - 1)
        rows.append(Row(tuple(row[:-1]), h, tuple(last), tuple(row[p + 1] for p in last)))
    return rows


def raw_factors(model: PreTrainedModel, names: Sequence[str], first: int, batch: Rows,
                edit_of_row: torch.Tensor
                ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per layer in ``names``: x (N, in), delta (N, out) and owning edit (N,) of every real
    token of ``batch``, from the gradient of the summed NLL of its scored tokens."""
    hidden = batch.hidden.detach().requires_grad_(True)  # the graph starts here
    with Trace(model, names, keep_inputs=True, keep_outputs=True, detach=False) as trace:
        final = upper_hidden(model, first, batch, hidden)
    nll = -scored_logprobs(model, final, batch).gather(1, batch.tokens[:, None]).sum()
    deltas = torch.autograd.grad(nll, [trace.outputs[n] for n in names])
    valid = batch.mask.bool()  # (R, T)
    owner = edit_of_row[:, None].expand_as(valid)[valid]  # (N,)
    out = []
    for name, delta in zip(names, deltas, strict=True):
        x = trace.inputs[name].detach().float()  # (R, T, in), on the layer's device
        mine = valid.to(x.device)
        out.append((x[mine], delta.detach().float()[mine], owner))
    return out


def edit_factors(model: PreTrainedModel, names: Sequence[str], first: int,
                 network: GradientTransform, batch: Rows, edit_of_row: torch.Tensor,
                 n_edits: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer in ``names``: the network's U (E, n, in) and V (E, n, out) for each of the
    ``n_edits`` edits; ``batch`` holds rows scored on their new targets, row r belonging to
    edit ``edit_of_row[r]``."""
    factors = []
    here = network.edit_lr.device  # a sharded model's edited layers may sit elsewhere
    for i, (x, d, owner) in enumerate(raw_factors(model, names, first, batch, edit_of_row)):
        u, v = network(x.to(here), d.to(here), i)  # (N, in), (N, out)
        owner = owner.to(here)
        factors.append((by_edit(u, owner, n_edits), by_edit(v, owner, n_edits)))
    return factors


def by_edit(factor: torch.Tensor, owner: torch.Tensor, n_edits: int) -> torch.Tensor:
    """(N, k) token factors -> (E, n, k), each edit's tokens first, zero-padded to n."""
    counts = torch.bincount(owner, minlength=n_edits)  # (E,)
    order = torch.argsort(owner, stable=True)
    slot = torch.cat([torch.arange(int(c), device=owner.device) for c in counts])
    out = factor.new_zeros(n_edits, int(counts.max()), factor.shape[1])
    return out.index_put((owner[order], slot), factor[order])


def heldout(edit: EditRequest) -> bool:
    return unit_hash("mend-heldout", edit.case_id) % 5 == 0
