"""MEND: a trained network turns the fine-tuning gradient of an edit into a weight update
(Mitchell et al., 2021, "Fast Model Editing at Scale").

The gradient of a loss with respect to a linear layer's weight is a sum of rank-one terms,
one per token: dL/dW = sum_t delta_t u_t^T, with u_t the layer's input (d_in,) and delta_t the
gradient at its output (d_out,). MEND edits the MLP output projections of ``layers``:

    x_t      = [u_t, delta_t], standardised with statistics gathered while training  (d_in + d_out,)
    x_t      <- x_t * scale[l] + shift[l]          per-layer affine, layer l of ``layers``
    x_t      <- x_t + B_k relu(A_k x_t), k = 1, 2  two low-rank residual blocks (A (rank, D),
                                                   B (D, rank), B starts at zero: identity at first)
    u~, d~   = the two parts of x_t
    W_l     += -edit_lr[l] * sum_t d~_t u~_t^T     edit_lr learned per layer, from ``edit_lr``

The network (shared by the layers, which have one shape) is trained here on counterfactual edits
of the GeoNames held-out pool; the suite's edits come from the other pool (no subject is shared).
Each step takes ``batch`` edits: the factors come from the NLL of the new target after the edit
prompt on the unedited model; the update is applied functionally; the loss is
``c_edit`` x NLL(new target | the prompt and its paraphrases) + KL(unedited || edited) of the
next-token distributions where the neighbourhood prompts predict their own answers + the same KL
over every position of ``batch`` plain sentences (first sentences of the ``corpus`` documents),
so that the update leaves text unlike the edit alone, as MEND's locality set does. Adam (``lr`` for the
network, ``lr_lr`` for the edit step sizes). One training edit in five (by a hash of its id) is
held out, and MEND's edit success on (at most 50 of) them is reported. The trained network is cached in
``<cache>/mend/<fingerprint[:16]>/`` keyed by the model fingerprint, the settings and a digest of
the training edits, with a checksum, under a file lock.

At edit time the same factors are computed on the current (possibly already edited) model and
the update is written into the weights: a weight edit, restored by copy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard import integrity
from editguard.editors import artifacts
from editguard.editors.base import EditorBase, PrepareContext
from editguard.editors.layers import arch_for, check_increasing, layer_field
from editguard.editors.prompts import TargetBatch, target_batch
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest, Neighbour
from editguard.edits.sampling import sample, unit_hash
from editguard.lm.corpus import first_sentences
from editguard.lm.device import model_device
from editguard.lm.tokens import pad_id, right_pad
from editguard.settings import at_least

ALGORITHM = {"method": "MEND (Mitchell et al., 2021)",
             "edited": "MLP output projections of the last layers",
             "network": "standardise [u, delta], per-layer scale/shift, two low-rank residual "
                        "blocks (identity at init); update -edit_lr[l] * sum_t d~ u~^T",
             "loss": "c_edit * NLL(edit prompt and paraphrases) + KL(neighbourhood)",
             "training_data": "counterfactual edits of the GeoNames held-out pool"}
VERSION = "3"  # of the training recipe (bump on any change to it): part of the artifact key
HELDOUT_MAX = 50  # held-out edits MEND's success is reported on


@dataclasses.dataclass(frozen=True)
class MendSettings:
    layers: tuple[int, ...] = layer_field((27, 28, 29))
    rank: int = at_least(192, 1)  # hidden width of each low-rank block
    edit_lr: float = 1e-4  # initial per-layer step size of the update
    steps: int = at_least(150, 1)  # training steps (about 4 minutes on 2 cores for SmolLM2)
    batch: int = at_least(8, 1)  # training edits per step
    lr: float = 1e-3  # Adam on the network
    lr_lr: float = 1e-4  # Adam on the per-layer step sizes
    c_edit: float = 0.1  # weight of the edit loss against the locality KL
    train_edits: int = at_least(0, 0)  # training edits from the held-out pool (0 = all)
    corpus: str = "wikipedia-en"  # plain sentences whose predictions the locality KL keeps


class LowRankBlock(torch.nn.Module):
    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = torch.nn.Linear(dim, rank)
        self.up = torch.nn.Linear(rank, dim)
        torch.nn.init.zeros_(self.up.weight)
        torch.nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.relu(self.down(x)))


class GradientTransform(torch.nn.Module):
    """[u, delta] -> [u~, delta~] for the layers of one weight shape (d_out, d_in)."""

    mean: torch.Tensor  # (D,) running statistics of the inputs, gathered while training
    var: torch.Tensor  # (D,)
    count: torch.Tensor  # ()

    def __init__(self, d_in: int, d_out: int, rank: int, n_layers: int, edit_lr: float) -> None:
        super().__init__()
        dim = d_in + d_out
        self.d_in = d_in
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros(()))
        self.scale = torch.nn.Parameter(torch.ones(n_layers, dim))
        self.shift = torch.nn.Parameter(torch.zeros(n_layers, dim))
        self.blocks = torch.nn.ModuleList([LowRankBlock(dim, rank) for _ in range(2)])
        self.edit_lr = torch.nn.Parameter(torch.full((n_layers,), float(edit_lr)))

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Merge a batch of (N, D) inputs into the running mean and variance (Chan et al.)."""
        n = float(x.shape[0])
        mean, var = x.mean(0), x.var(0, unbiased=False)
        total = float(self.count) + n
        delta = mean - self.mean
        self.var.copy_((self.var * float(self.count) + var * n
                        + delta ** 2 * float(self.count) * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.fill_(total)

    def forward(self, u: torch.Tensor, delta: torch.Tensor, layer: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([u, delta], dim=-1).float()  # (N, D)
        x = (x - self.mean) / (self.var + 1e-8).sqrt()
        x = x * self.scale[layer] + self.shift[layer]
        for block in self.blocks:
            x = block(x)
        return x[:, : self.d_in], x[:, self.d_in :]

    def update(self, u: torch.Tensor, delta: torch.Tensor, layer: int) -> torch.Tensor:
        """(N, d_in), (N, d_out) factors -> the (d_out, d_in) weight update of layer ``layer``."""
        u_t, d_t = self.forward(u, delta, layer)
        return -self.edit_lr[layer] * d_t.T @ u_t


@dataclasses.dataclass
class Factors:
    u: dict[str, torch.Tensor]  # module -> (N, d_in) inputs at the target positions
    delta: dict[str, torch.Tensor]  # module -> (N, d_out) output gradients there


def nll(logits: torch.Tensor, batch: TargetBatch) -> torch.Tensor:
    """Mean over requests of each one's mean NLL of its target tokens."""
    logp = F.log_softmax(logits[batch.rows, batch.positions].float(), dim=-1)  # (N, V)
    token = -logp.gather(1, batch.tokens[:, None])[:, 0]  # (N,)
    n_rows = int(batch.rows.max()) + 1
    per_row = torch.zeros(n_rows, device=token.device).index_add(0, batch.rows, token)
    counts = torch.bincount(batch.rows, minlength=n_rows).clamp(min=1)
    return (per_row / counts).mean()


@contextmanager
def capture(model: torch.nn.Module, names: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Keep each named module's input and make its output a leaf of the gradient graph."""
    seen: dict[str, Any] = {"inputs": {}, "outputs": {}}
    handles = []
    for name in names:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], output: torch.Tensor,
                 name: str = name) -> torch.Tensor:
            seen["inputs"][name] = args[0].detach()
            if not output.requires_grad:
                output = output.detach().requires_grad_(True)
            seen["outputs"][name] = output
            return output

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def factors(model: PreTrainedModel, batch: TargetBatch, names: Sequence[str]) -> Factors:
    """The rank-one factors of d NLL / dW for each named module at the target positions."""
    with frozen(model), torch.enable_grad(), capture(model, names) as seen:
        logits = model(input_ids=batch.ids, attention_mask=batch.mask).logits
        loss = nll(logits, batch)
        grads = torch.autograd.grad(loss, [seen["outputs"][n] for n in names])
    where = (batch.rows, batch.positions)
    return Factors({n: seen["inputs"][n][where].float() for n in names},
                   {n: g[where].float() for n, g in zip(names, grads)})


def neighbour_batch(tokenizer: PreTrainedTokenizerBase, neighbours: Sequence[Neighbour],
                    device: torch.device) -> TargetBatch:
    """Each neighbourhood prompt followed by its own answer, with the positions that predict
    the answer (where the locality KL is read)."""
    asked = [EditRequest(f"neighbour-{i}", "{}", n.prompt, n.target, n.target)
             for i, n in enumerate(neighbours)]
    return target_batch(tokenizer, asked, device)


class MendEditor(EditorBase):
    name: ClassVar[str] = "mend"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = MendSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._net: GradientTransform | None = None

    def _validate(self, cfg: Any) -> None:
        check_increasing(self.name, cfg.layers)
        for key in ("edit_lr", "lr", "lr_lr", "c_edit"):
            if not getattr(cfg, key) > 0:
                raise ValueError(f"mend {key} {getattr(cfg, key)} must be positive")

    def _modules(self, model: PreTrainedModel) -> list[str]:
        arch = arch_for(model)
        return [arch.mlp_out_name(layer) for layer in self._cfg.layers]

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        return [name + ".weight" for name in self._modules(model)]

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self._net, status, meta = self._load_or_train(model, tokenizer, self.context)
        self.provenance = {"algorithm": ALGORITHM, "network": {
            "cache": status, "key": meta["key"], "heldout": json.loads(meta["heldout"]),
            "train_seconds": float(meta["train_seconds"]), "training_data": meta["data"],
            "parameters": sum(p.numel() for p in self._net.parameters())}}

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        net = self._net
        if net is None:
            raise RuntimeError("mend: prepare() did not build the network")
        batch = target_batch(tokenizer, requests, model_device(model))
        params = dict(model.named_parameters())
        norms = {}
        with torch.no_grad():
            for name, update in self._deltas(model, net, batch, observe=False).items():
                params[name].add_(update.to(params[name].dtype))
                norms[name] = float(update.norm())
        return {"update_norm": norms}

    # -- the network: cached, or trained here ---------------------------------------------
    def _training_edits(self) -> list[EditRequest]:
        from editguard.edits.facts import build_edits
        from editguard.edits.geonames import heldout_facts

        pool = heldout_facts(self.context.seed)
        edits = [e for e in build_edits(pool, self.context.seed, neighbours=pool)
                 if e.neighbourhood]
        count = self._cfg.train_edits
        return sample(edits, count, self.context.seed) if count else edits

    def _load_or_train(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       context: PrepareContext) -> tuple[GradientTransform, str, dict[str, str]]:
        cfg: MendSettings = self._cfg
        edits = self._training_edits()
        sentences = first_sentences(context.corpus(cfg.corpus).texts, len(edits))
        if not sentences:
            raise ValueError(f"mend corpus {cfg.corpus!r} gives no sentence of 3 to 40 words "
                             "for the locality loss; pass --method-opt mend.corpus=file:PATH")
        data = integrity.sha256_hex(json.dumps([[dataclasses.asdict(e) for e in edits],
                                                sentences], sort_keys=True).encode())
        key = integrity.sha256_hex(json.dumps({
            "version": VERSION, "fingerprint": context.fingerprint, "seed": context.seed,
            "settings": dataclasses.asdict(cfg), "data": data}, sort_keys=True).encode())
        net = self._new_net(model)

        def train() -> tuple[artifacts.Tensors, artifacts.Meta]:
            meta = self._train(model, tokenizer, net, edits, sentences, context)
            meta["data"] = (f"{len(edits)} GeoNames held-out edits, {len(sentences)} sentences "
                            f"of {cfg.corpus}")
            return dict(net.state_dict()), meta

        def check(tensors: artifacts.Tensors, meta: artifacts.Meta) -> None:
            net.load_state_dict(tensors)  # raises on missing keys or wrong shapes
            json.loads(meta["heldout"]), float(meta["train_seconds"])

        tensors, meta, status = artifacts.load_or_train(
            context.cache_dir / "mend" / context.fingerprint[:16], "network", key,
            "MEND network", train, check)
        net.load_state_dict(tensors)
        return net.to(model_device(model)).eval(), status, meta

    def _new_net(self, model: PreTrainedModel) -> GradientTransform:
        cfg: MendSettings = self._cfg
        weight = dict(model.named_parameters())[self._parameter_names(model)[0]]
        d_out, d_in = weight.shape if arch_for(model).layout == "out_in" else weight.shape[::-1]
        torch.manual_seed(self.context.seed)
        return GradientTransform(int(d_in), int(d_out), cfg.rank, len(cfg.layers), cfg.edit_lr)

    def _train(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               net: GradientTransform, edits: list[EditRequest], sentences: list[str],
               context: PrepareContext) -> dict[str, str]:
        cfg: MendSettings = self._cfg
        start = time.perf_counter()
        held = [e for e in edits if unit_hash("mend-heldout", e.case_id) % 5 == 0]
        held = held[:HELDOUT_MAX]
        train = [e for e in edits if unit_hash("mend-heldout", e.case_id) % 5 != 0]
        net.train()
        others = [p for n, p in net.named_parameters() if n != "edit_lr"]
        optimiser = torch.optim.Adam([{"params": others, "lr": cfg.lr},
                                      {"params": [net.edit_lr], "lr": cfg.lr_lr}])
        generator = torch.Generator().manual_seed(context.seed)
        losses: list[float] = []
        for step in range(cfg.steps):
            chosen = torch.randperm(len(train), generator=generator)[: cfg.batch].tolist()
            requests = [train[i] for i in chosen]
            picked = torch.randint(len(sentences), (cfg.batch,), generator=generator).tolist()
            loss, parts = self._loss(model, tokenizer, net, requests,
                                     [sentences[i] for i in picked], observe=True)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(parts["edit"])
            if step % 10 == 0 or step == cfg.steps - 1:
                context.progress("mend network: training", step + 1, cfg.steps)
        net.eval()
        heldout = self._evaluate(model, tokenizer, net, held)
        heldout["final_edit_nll"] = sum(losses[-20:]) / len(losses[-20:])
        return {"heldout": json.dumps(heldout), "train_seconds":
                f"{time.perf_counter() - start:.1f}", "train_edits": str(len(train))}

    def _deltas(self, model: PreTrainedModel, net: GradientTransform, batch: TargetBatch,
                observe: bool) -> dict[str, torch.Tensor]:
        """Parameter name -> the network's update for the requests of ``batch``."""
        names = self._modules(model)
        found = factors(model, batch, names)
        if observe:
            for name in names:
                net.observe(torch.cat([found.u[name], found.delta[name]], dim=-1))
        out = {}
        for index, name in enumerate(names):
            update = net.update(found.u[name], found.delta[name], index)
            out[name + ".weight"] = update if arch_for(model).layout == "out_in" else update.T
        return out

    def _loss(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              net: GradientTransform, requests: list[EditRequest], sentences: list[str],
              observe: bool) -> tuple[torch.Tensor, dict[str, float]]:
        cfg: MendSettings = self._cfg
        device = model_device(model)
        deltas = self._deltas(model, net, target_batch(tokenizer, requests, device), observe)
        params = dict(model.named_parameters())
        edited = {n: params[n] + d.to(params[n].dtype) for n, d in deltas.items()}
        asked = [dataclasses.replace(r, prompt=p.replace(r.subject, "{}", 1))
                 for r in requests for p in (r.text, *r.paraphrase_prompts) if r.subject in p]
        equivalent = target_batch(tokenizer, asked, device)
        local = neighbour_batch(tokenizer, [n for r in requests for n in r.neighbourhood], device)
        where = (local.rows, local.positions)
        with frozen(model), torch.enable_grad():
            logits = torch.func.functional_call(
                model, edited, (), {"input_ids": equivalent.ids,
                                    "attention_mask": equivalent.mask}).logits
            edit_loss = nll(logits, equivalent)
            with torch.no_grad():
                base = F.log_softmax(model(input_ids=local.ids, attention_mask=local.mask)
                                     .logits[where].float(), -1)  # (N, V)
            after = F.log_softmax(torch.func.functional_call(
                model, edited, (), {"input_ids": local.ids, "attention_mask": local.mask})
                .logits[where].float(), -1)  # (N, V)
            loc_loss = (base.exp() * (base - after)).sum(-1).mean()
            ids, mask = right_pad([tokenizer(t)["input_ids"] for t in sentences],
                                  pad_id(tokenizer), device)  # (S, T)
            with torch.no_grad():
                base = F.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            after = F.log_softmax(torch.func.functional_call(
                model, edited, (), {"input_ids": ids, "attention_mask": mask}).logits.float(), -1)
            text_kl = (base.exp() * (base - after)).sum(-1)  # (S, T)
            text_loss = (text_kl * mask).sum() / mask.sum()
        loss = cfg.c_edit * edit_loss + loc_loss + text_loss
        return loss, {"edit": float(edit_loss.detach()), "locality": float(loc_loss.detach()),
                      "text": float(text_loss.detach())}

    @torch.no_grad()
    def _evaluate(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                  net: GradientTransform, edits: list[EditRequest]) -> dict[str, float]:
        """Edit success of one-at-a-time MEND edits of ``edits``: the new target beats the true
        one after the prompt (rewrite) and after each paraphrase; the neighbours keep theirs."""
        rewrite, paraphrase, neighbourhood = [], [], []
        params = dict(model.named_parameters())
        for request in edits:
            deltas = self._deltas(model, net, target_batch(tokenizer, [request],
                                                            model_device(model)), False)
            saved = {n: params[n].detach().clone() for n in deltas}
            try:
                for n, d in deltas.items():
                    params[n].add_(d.to(params[n].dtype))
                wins = [_prefers(model, tokenizer, p, request.target_new, request.target_true)
                        for p in (request.text, *request.paraphrase_prompts)]
                rewrite.append(wins[0])
                paraphrase += wins[1:]
                neighbourhood += [_prefers(model, tokenizer, n.prompt, n.target,
                                           request.target_new) for n in request.neighbourhood]
            finally:
                for n, tensor in saved.items():
                    params[n].copy_(tensor)
        return {"edits": len(edits), "rewrite": _mean(rewrite), "paraphrase": _mean(paraphrase),
                "neighbourhood": _mean(neighbourhood)}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _prefers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str,
             first: str, second: str) -> float:
    """1.0 when ``first`` has the higher mean token log-probability after ``prompt``."""
    scores = []
    for answer in (first, second):
        context = tokenizer(prompt)["input_ids"]
        target = tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + target[:-1]], device=model_device(model))
        logp = F.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        scores.append(float(sum(logp[len(context) - 1 + j, t] for j, t in enumerate(target)))
                      / len(target))
    return float(scores[0] > scores[1])
