"""KN: knowledge neurons (Dai et al., 2022), as EasyEdit's ``knowledge_neurons`` edits them.

1. Attribution. For each prompt, each layer l and each MLP neuron i, the integrated gradient of
   P(target_true token | prompt) with respect to the neuron's activation a_li at the prompt's last
   token: a_li * mean over alpha in linspace(0, 1, steps) of dP/da_li at alpha * a (the other
   layers untouched). A target of several tokens is attributed token by token (teacher forced) and
   averaged. The activation is the input of the MLP output projection, what column i of that
   matrix multiplies (EasyEdit scales the pre-activation of gate_proj / c_fc instead; the KN paper,
   on BERT, the post-activation as here).
2. Selection. Per prompt the "coarse" neurons score above ``adaptive_threshold`` x that prompt's
   largest score (and above 0); with ``refine`` a neuron is kept when more than ``p`` of the prompts share it.
   The prompts are the edit prompt and its model-written prefixed versions (ROME's context
   templates), not the request's paraphrases, which efficacy scores.
3. Edit. Each kept neuron's value vector (column i of the output projection) gets the word
   embeddings of ``target_new``'s tokens added and those of the model's own greedy answer
   subtracted, times 2 for a one-token target, 1 per token otherwise (EasyEdit's factors), and
   times the sign of the neuron's activation on the edit prompt, so that the change pushes the
   output toward the new target where the neuron fires (EasyEdit ignores the sign, which turns
   the edit around for neurons with negative activations, common after SiLU / GELU gates).

Only the last token is scaled, so everything before it is run once: its KV cache serves every
(layer, alpha) row of one batched forward of that single token.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.base import EditorBase
from editguard.editors.layers import arch_for, layer_field, n_layers, to_out_in
from editguard.editors.nethook import Trace
from editguard.editors.prompts import context_templates, fill
from editguard.editors.values import frozen
from editguard.edits.request import EditRequest
from editguard.lm import cache as kv
from editguard.lm.device import model_device
from editguard.lm.forward import logits_from_hidden
from editguard.settings import at_least

ALGORITHM = {"method": "KN (Dai et al., 2022)", "follows": "EasyEdit knowledge_neurons",
             "attribution": "integrated gradients of P(target_true) at the last prompt token, "
                            "on the input of each MLP output projection",
             "selection": "score > adaptive_threshold x max per prompt; refine: shared by > p",
             "prompts": "the edit prompt and its context-template versions",
             "edit": "value column += factor x (sum E[target_new] - sum E[greedy answer])"}


@dataclasses.dataclass(frozen=True)
class KnSettings:
    layers: tuple[int, ...] = layer_field(())  # attributed layers; empty = every layer
    steps: int = at_least(20, 2)  # integrated-gradient steps (alpha from 0 to 1)
    adaptive_threshold: float = 0.2
    refine: bool = True
    p: float = 0.4  # refine: the share of prompts a neuron must appear in (more than)
    context_templates: int = 2  # prompts besides the plain one, for refinement
    context_length: int = at_least(10, 1)
    max_neurons: int = at_least(0, 0)  # keep at most this many, best first; 0 = all (EasyEdit)


class KnEditor(EditorBase):
    name: ClassVar[str] = "kn"
    supports_batch: ClassVar[bool] = False
    settings: ClassVar[type] = KnSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._templates: list[str] = ["{}"]

    def _validate(self, cfg: KnSettings) -> None:
        if not 0 < cfg.adaptive_threshold < 1:
            raise ValueError(f"kn: adaptive_threshold {cfg.adaptive_threshold} must be in (0, 1) "
                             "(--method-opt kn.adaptive_threshold=0.2)")
        if not 0 <= cfg.p < 1:
            raise ValueError(f"kn: p {cfg.p} must be in [0, 1) (--method-opt kn.p=0.4)")

    def _layers(self, model: PreTrainedModel) -> list[int]:
        return list(self._cfg.layers) or list(range(n_layers(model)))

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        arch = arch_for(model)
        return [arch.weight_name(layer) for layer in self._layers(model)]

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        cfg: KnSettings = self._cfg
        self._templates = context_templates(model, tokenizer, cfg.context_templates,
                                            cfg.context_length, self.context.seed)
        self.provenance = {"algorithm": ALGORITHM, "context_templates": self._templates}

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: KnSettings = self._cfg
        (request,) = requests
        layers = self._layers(model)
        true_ids = tokenizer(" " + request.target_true, add_special_tokens=False)["input_ids"]
        if not request.target_true.strip():
            raise ValueError(f"kn attributes the answer the model gives now (target_true), and "
                             f"edit {request.case_id!r} has none; give each request its "
                             "target_true")
        prompts = [fill(t, request.text) for t in self._templates]
        coarse = []
        signs = torch.ones(0)
        for text in prompts:
            prompt = tokenizer(text)["input_ids"]
            per_token = [attribution(model, prompt + true_ids[:j], tok, layers, cfg.steps)
                         for j, tok in enumerate(true_ids)]
            coarse.append(torch.stack([s for s, _ in per_token]).mean(0))  # (L, d_ff)
            if not signs.numel():  # the plain prompt's activations, where the edit must act
                signs = torch.sign(per_token[0][1])
        counts: Counter[tuple[int, int]] = Counter()
        best: dict[tuple[int, int], float] = {}
        for scores in coarse:
            # positive attributions only: when none is (the model all but rules the old answer
            # out), no neuron expresses it and nothing is edited
            mask = (scores > cfg.adaptive_threshold * scores.max()) & (scores > 0)
            above = mask.nonzero().tolist()
            for k, i in above:
                counts[(layers[k], i)] += 1
                best[(layers[k], i)] = max(best.get((layers[k], i), 0.0), float(scores[k, i]))
        need = cfg.p * len(prompts) if cfg.refine else 0
        kept = sorted((n for n, c in counts.items() if c > need), key=lambda n: -best[n])
        kept = sorted(kept[: cfg.max_neurons] if cfg.max_neurons else kept)
        self._rewrite(model, tokenizer, request, kept,
                      [float(signs[layers.index(layer), i]) for layer, i in kept])
        return {"neurons": [list(n) for n in kept],
                "coarse": [int(((s > cfg.adaptive_threshold * s.max()) & (s > 0)).sum())
                           for s in coarse]}

    @torch.no_grad()
    def _rewrite(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 request: EditRequest, neurons: Sequence[tuple[int, int]],
                 signs: Sequence[float]) -> None:
        if not neurons:
            return
        arch = arch_for(model)
        device = model_device(model)
        new_ids = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([tokenizer(request.text)["input_ids"]], device=device)
        said: list[int] = []
        for _ in new_ids:  # the model's own greedy answer, as long as the new target
            token = int(model(input_ids=ids).logits[0, -1].argmax())
            said.append(token)
            ids = torch.cat([ids, torch.tensor([[token]], device=device)], dim=1)
        embedding = model.get_input_embeddings()
        if not isinstance(embedding, torch.nn.Embedding):
            raise TypeError(f"kn needs a token embedding table, got {type(embedding).__name__}")
        embed = embedding.weight  # (V, d)
        factor = 2.0 if len(new_ids) == 1 else 1.0
        change = factor * (embed[new_ids].sum(0) - embed[said].sum(0))  # (d,)
        for (layer, index), sign in zip(neurons, signs, strict=True):
            weight = to_out_in(model.get_parameter(arch.weight_name(layer)), arch)  # (d, d_ff)
            weight[:, index] += (sign * change).to(weight.device, weight.dtype)


def attribution(model: PreTrainedModel, ids: Sequence[int], target: int, layers: Sequence[int],
                steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(layers), d_ff) integrated gradients of P(target | ids) w.r.t. each layer's MLP
    activations (the output projection's input) at the last position, and those activations."""
    arch = arch_for(model)
    device = model_device(model)
    modules = [arch.mlp_out_name(layer) for layer in layers]
    head, last = list(ids[:-1]), ids[-1]
    with torch.no_grad():
        cache = kv.run_prefix(model, head, device)
        one = torch.tensor([[last]], device=device)
        with Trace(model, modules, keep_inputs=True) as trace:
            kv.forward(model, one, torch.ones((1, len(ids)), dtype=torch.long, device=device),
                       torch.tensor([[len(head)]], device=device), kv.repeat(cache, 1))
    base = [trace.inputs[m][0, -1].float() for m in modules]  # each (d_ff,)
    alphas = torch.linspace(0, 1, steps, device=device)  # (S,)
    rows = len(modules) * steps
    # each (S, d_ff), on its layer's device (a sharded model has several)
    scaled = [(alphas.to(b.device)[:, None] * b[None]).requires_grad_(True) for b in base]
    owner = {m: k for k, m in enumerate(modules)}

    def scale(module_input: torch.Tensor, name: str) -> torch.Tensor:
        k = owner[name]
        out = module_input.clone()  # (rows, 1, d_ff)
        out[k * steps:(k + 1) * steps, -1] = scaled[k].to(out.dtype)
        return out

    with frozen(model), torch.enable_grad():
        handles = [model.get_submodule(m).register_forward_pre_hook(
            lambda mod, args, name=m: (scale(args[0], name), *args[1:])) for m in modules]
        try:
            hidden = kv.forward(model, one.expand(rows, 1),
                                torch.ones((rows, len(ids)), dtype=torch.long, device=device),
                                torch.full((rows, 1), len(head), device=device),
                                kv.repeat(cache, rows))  # (rows, 1, d)
        finally:
            for handle in handles:
                handle.remove()
        logits = logits_from_hidden(model, hidden[:, -1]).float()  # (rows, V)
        probs = F.softmax(logits, dim=-1)[:, target]  # (rows,)
        grads = torch.autograd.grad(probs.sum(), scaled)  # each (S, d_ff)
    scores = torch.stack([(b * g.sum(0) / steps).to(device) for b, g in zip(base, grads)])
    return scores, torch.stack([b.to(device) for b in base])  # (L, d_ff) each
