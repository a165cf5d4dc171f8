"""SERAC: a scope classifier routes each input; inputs in scope of an edit go to a counterfactual
model that reads the edit, all others to the unedited model (Mitchell et al., 2022). Not a weight
edit: a routing layer on the model (``editguard.lm.routing``) that every backend honours.

Scope classifier (SERAC's embedding variant, over the base model's own features):

    f(x)   mean over x's tokens of the hidden state after block ``layer``, standardised    (d,)
    z(x)   W f(x) / |W f(x)|, W a trained linear map                                     (dim,)
    p(x in scope of e) = sigmoid(scale * z(x) . z(e.prompt) + bias)

x goes to the edit it is most likely in scope of, if that probability exceeds ``threshold``. W,
scale and bias are trained here (Adam on binary cross-entropy, full batch) from counterfactual
edits of the GeoNames held-out pool: an edit's prompt with itself and its paraphrases is in
scope; with its neighbourhood prompts, another edit's paraphrase and a corpus sentence it is out
of scope. The suite's edits come from the other pool, so no subject is shared (the split is
``editguard.edits.facts.split_facts``, by a hash of the subject). One training edit in five (by
a hash of its id) is held out, and the classifier's recall and specificity on it are reported.
The trained classifier is cached in ``<cache>/serac/<fingerprint[:16]>/`` keyed by the model
fingerprint, the settings and a digest of the training pairs, with a checksum, under a file lock.

The classifier reads an input's last paragraph (after its last blank line): the question of a
few-shot prompt, not its exemplars; at most the last ``max_tokens`` tokens of it.

Counterfactual model: offline, the base model itself, reading the edit stated before the input,
``statement.format(prompt=<edit prompt>, target=<new target>) + input`` (SERAC trains a second
model for this; none is trained or loaded here). Restore uninstalls the router once its last edit
is undone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard import integrity
from editguard.editors import artifacts
from editguard.editors.base import EditorBase, PrepareContext
from editguard.editors.layers import arch_for, layer_field
from editguard.editors.nethook import Trace
from editguard.edits.request import EditRequest
from editguard.edits.sampling import sample, unit_hash
from editguard.lm import routing
from editguard.lm.corpus import first_sentences
from editguard.lm.device import model_device
from editguard.lm.tokens import pad_id, right_pad
from editguard.settings import at_least

ALGORITHM = {"method": "SERAC (Mitchell et al., 2022)",
             "scope_classifier": "embedding: trained linear map over the base model's mean "
                                 "hidden state, cosine, logistic",
             "counterfactual_model": "the base model with the edit stated before the input",
             "training_data": "counterfactual edits of the GeoNames held-out pool"}
VERSION = "1"  # of the classifier's training recipe: part of the artifact key
BATCH = 32


@dataclasses.dataclass(frozen=True)
class SeracSettings:
    layer: int = layer_field(15)  # the block whose output the classifier reads
    dim: int = at_least(256, 1)  # size of the learned embedding
    steps: int = at_least(600, 1)  # full-batch Adam steps
    lr: float = 1e-3
    threshold: float = 0.5  # in scope above this probability
    train_edits: int = at_least(0, 0)  # training edits from the held-out pool (0 = all)
    corpus: str = "wikipedia-en"  # out-of-scope sentences for training
    max_tokens: int = at_least(256, 8)  # of an input's last paragraph that the classifier reads
    statement: str = "{prompt} {target}.\n"  # how the counterfactual model reads an edit


@dataclasses.dataclass
class Classifier:
    """The trained scope classifier."""

    mean: torch.Tensor  # (d,)
    std: torch.Tensor  # (d,)
    weight: torch.Tensor  # (dim, d)
    scale_bias: torch.Tensor  # (2,)
    meta: dict[str, str]

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """(N, d) features -> (N, dim) unit vectors."""
        z = ((features.float() - self.mean) / self.std) @ self.weight.T
        return F.normalize(z, dim=-1)

    def logits(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(N, dim), (K, dim) unit vectors -> (N, K) in-scope logits."""
        return self.scale_bias[0] * queries @ keys.T + self.scale_bias[1]

    def pair_logits(self, inputs: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """(N, d), (N, d) features -> (N,) logits that input i is in scope of prompt i."""
        similarity = (self.embed(inputs) * self.embed(prompts)).sum(-1)
        return self.scale_bias[0] * similarity + self.scale_bias[1]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std, "weight": self.weight,
                "scale_bias": self.scale_bias}


def last_paragraph(text: str) -> str:
    tail = text.rsplit("\n\n", 1)[-1].strip()
    return tail or text.strip()


@torch.no_grad()
def features(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
             layer: int, max_tokens: int,
             progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """(N, d) mean hidden state after block ``layer`` of each text's last ``max_tokens`` tokens."""
    name = arch_for(model).block_name(layer)
    rows = [list(tokenizer(t)["input_ids"])[-max_tokens:] or [pad_id(tokenizer)] for t in texts]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # little padding per batch
    out: list[torch.Tensor | None] = [None] * len(rows)
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        ids, mask = right_pad([rows[i] for i in chunk], pad_id(tokenizer), model_device(model))
        with Trace(model, [name], keep_outputs=True, stop=True) as trace:
            model(input_ids=ids, attention_mask=mask)
        hidden = trace.outputs[name].float()  # (B, T, d)
        weights = mask[..., None].float().to(hidden.device)  # (B, T, 1)
        means = (hidden * weights).sum(1) / weights.sum(1)  # (B, d)
        for row, i in enumerate(chunk):
            out[i] = means[row].cpu()
        if progress is not None:
            progress(min(start + BATCH, len(order)), len(order))
    return torch.stack([t for t in out if t is not None])


def training_pairs(edits: Sequence[EditRequest], sentences: Sequence[str]
                   ) -> list[tuple[str, str, float]]:
    """(edit prompt, input, 1 in scope / 0 not) for each edit."""
    pairs: list[tuple[str, str, float]] = []
    for i, e in enumerate(edits):
        pairs += [(e.text, x, 1.0) for x in (e.text, *e.paraphrase_prompts)]
        pairs += [(e.text, n.prompt, 0.0) for n in e.neighbourhood]
        other = edits[(i + 1) % len(edits)]
        if other.subject != e.subject:
            pairs += [(e.text, x, 0.0) for x in other.paraphrase_prompts[:1]]
        if sentences:
            pairs.append((e.text, sentences[i % len(sentences)], 0.0))
    return pairs


class SeracRouter(routing.Router):
    """The edits in memory and the classifier that decides which one an input is in scope of."""

    def __init__(self, classifier: Classifier, embed: Callable[[Sequence[str]], torch.Tensor],
                 threshold: float, statement: str) -> None:
        super().__init__()
        self.classifier = classifier
        self._embed = embed  # texts -> (N, dim) unit vectors (a plain function, not a module)
        # text -> its unit vector: SERAC changes no weight, so a text's features never change,
        # and every checkpoint of a trajectory routes the same benchmark prompts again
        self._embedded: dict[str, torch.Tensor] = {}
        self.threshold = threshold
        self.statement = statement
        self.keys = torch.zeros((0, classifier.weight.shape[0]))  # (K, dim), a plain tensor
        self.statements: list[str] = []

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, dim) unit vectors of ``texts``, each computed once."""
        new = sorted({t for t in texts if t not in self._embedded})
        if new:
            self._embedded.update(zip(new, self._embed(new)))
        return torch.stack([self._embedded[t] for t in texts])

    def add(self, requests: Sequence[EditRequest]) -> None:
        self.keys = torch.cat([self.keys, self.embed([r.text for r in requests])])
        self.statements += [self.statement.format(prompt=r.text, target=r.target_new)
                            for r in requests]

    def truncate(self, count: int) -> None:
        self.keys = self.keys[:count]
        self.statements = self.statements[:count]

    def scope(self, texts: Sequence[str]) -> list[int | None]:
        """The edit each text is routed to (None: the base model)."""
        if not self.statements:
            return [None] * len(texts)
        queries = [last_paragraph(t) for t in texts]
        unique = sorted(set(queries))
        probs = torch.sigmoid(self.classifier.logits(self.embed(unique), self.keys))  # (U, K)
        best_p, best = probs.max(dim=1)
        chosen = {q: int(b) if float(p) > self.threshold else None
                  for q, p, b in zip(unique, best_p, best)}
        return [chosen[q] for q in queries]

    def route(self, texts: Sequence[str]) -> list[str]:
        return [t if k is None else self.statements[k] + t
                for t, k in zip(texts, self.scope(texts))]


class SeracEditor(EditorBase):
    name: ClassVar[str] = "serac"
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type] = SeracSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classifier: Classifier | None = None
        self._router: SeracRouter | None = None
        self._model: PreTrainedModel | None = None

    def _validate(self, cfg: Any) -> None:
        if not 0.0 < cfg.threshold < 1.0:
            raise ValueError(f"serac threshold {cfg.threshold} must lie strictly between 0 and "
                             "1 (a probability); e.g. --method-opt serac.threshold=0.5")
        if not cfg.lr > 0:
            raise ValueError(f"serac lr {cfg.lr} must be positive")
        try:
            cfg.statement.format(prompt="p", target="t")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"serac statement {cfg.statement!r} must be a format string with "
                             f"only {{prompt}} and {{target}} ({err!r})") from None
        if "{prompt}" not in cfg.statement or "{target}" not in cfg.statement:
            raise ValueError(f"serac statement {cfg.statement!r} must contain {{prompt}} and "
                             "{target}: the counterfactual model reads both")

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        return []  # nothing is written into the weights

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        if self._model is not None:
            routing.uninstall(self._model)
        self._router = None
        self._classifier, status = self._load_or_train(model, tokenizer, self.context)
        meta = self._classifier.meta
        self.provenance = {"algorithm": ALGORITHM, "classifier": {
            "cache": status, "key": meta["key"],
            "heldout": json.loads(meta["heldout"]), "train_pairs": int(meta["train_pairs"]),
            "train_seconds": float(meta["train_seconds"]), "training_data": meta["data"]}}

    def _checkpoint(self) -> Callable[[], None]:
        count = 0 if self._router is None else len(self._router.statements)

        def undo() -> None:
            if self._router is None:
                return
            self._router.truncate(count)
            if count == 0 and self._model is not None:
                routing.uninstall(self._model)
                self._router = None

        return undo

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        cfg: SeracSettings = self._cfg
        classifier = self._classifier
        if classifier is None:
            raise RuntimeError("serac: prepare() did not build the scope classifier")
        if self._router is None:
            def embed(texts: Sequence[str]) -> torch.Tensor:
                feats = features(model, tokenizer, texts, cfg.layer, cfg.max_tokens)
                return classifier.embed(feats)

            self._router = SeracRouter(classifier, embed, cfg.threshold, cfg.statement)
            routing.install(model, self._router)
            self._model = model
        self._router.add(requests)
        routed_to = self._router.scope([r.text for r in requests])
        first = len(self._router.statements) - len(requests)
        own = [k == first + i for i, k in enumerate(routed_to)]
        return {"edits_in_memory": len(self._router.statements),
                "own_prompt_in_scope": sum(own) / len(own)}

    # -- the scope classifier: cached, or trained here ----------------------------------------
    def _training_edits(self) -> list[EditRequest]:
        from editguard.edits.facts import build_edits
        from editguard.edits.geonames import heldout_facts

        pool = heldout_facts(self.context.seed)
        edits = build_edits(pool, self.context.seed, neighbours=pool)
        count = self._cfg.train_edits
        return sample(edits, count, self.context.seed) if count else edits

    def _load_or_train(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       context: PrepareContext) -> tuple[Classifier, str]:
        cfg: SeracSettings = self._cfg
        edits = self._training_edits()
        sentences = first_sentences(context.corpus(cfg.corpus).texts, len(edits))
        pairs = training_pairs(edits, sentences)
        valid = {e.text for e in edits if unit_hash("serac-heldout", e.case_id) % 5 == 0}
        data = integrity.sha256_hex(json.dumps(pairs).encode())
        key = integrity.sha256_hex(json.dumps({
            "version": VERSION, "fingerprint": context.fingerprint, "seed": context.seed,
            "settings": {k: v for k, v in dataclasses.asdict(cfg).items()
                         if k not in ("threshold", "statement")},
            "data": data}, sort_keys=True).encode())
        folder = context.cache_dir / "serac" / context.fingerprint[:16]

        def train() -> tuple[artifacts.Tensors, artifacts.Meta]:
            trained = self._train(model, tokenizer, pairs, valid, context)
            meta = {**trained.meta, "data": f"{len(edits)} GeoNames held-out edits, "
                                            f"{len(sentences)} sentences of {cfg.corpus}"}
            return trained.tensors(), meta

        def check(tensors: artifacts.Tensors, meta: artifacts.Meta) -> None:
            json.loads(meta["heldout"]), int(meta["train_pairs"]), float(meta["train_seconds"])
            if tuple(tensors["weight"].shape) != (cfg.dim, tensors["mean"].shape[0]):
                raise ValueError(f"weight has shape {tuple(tensors['weight'].shape)}")

        tensors, meta, status = artifacts.load_or_train(folder, "classifier", key,
                                                        "SERAC classifier", train, check)
        classifier = Classifier(tensors["mean"], tensors["std"], tensors["weight"],
                                tensors["scale_bias"], meta)
        return classifier, status

    def _train(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               pairs: list[tuple[str, str, float]], valid: set[str],
               context: PrepareContext) -> Classifier:
        cfg: SeracSettings = self._cfg
        start = time.perf_counter()
        texts = sorted({t for a, b, _ in pairs for t in (a, b)})
        index = {t: i for i, t in enumerate(texts)}
        feats = features(model, tokenizer, texts, cfg.layer, cfg.max_tokens,
                         lambda done, total: context.progress("serac scope classifier: "
                                                              "features", done, total))
        is_valid = torch.tensor([a in valid for a, _, _ in pairs])
        left = torch.tensor([index[a] for a, _, _ in pairs])
        right = torch.tensor([index[b] for _, b, _ in pairs])
        labels = torch.tensor([y for _, _, y in pairs])
        generator = torch.Generator().manual_seed(context.seed)
        weight = (torch.randn(cfg.dim, feats.shape[1], generator=generator)
                  / feats.shape[1] ** 0.5).requires_grad_(True)
        scale_bias = torch.tensor([10.0, -5.0], requires_grad=True)
        classifier = Classifier(feats.mean(0), feats.std(0) + 1e-5, weight, scale_bias, {})
        optimiser = torch.optim.Adam([weight, scale_bias], lr=cfg.lr)
        train = ~is_valid

        def logits(rows: torch.Tensor) -> torch.Tensor:
            return classifier.pair_logits(feats[right[rows]], feats[left[rows]])

        with torch.enable_grad():
            for step in range(cfg.steps):
                optimiser.zero_grad()
                loss = F.binary_cross_entropy_with_logits(logits(train), labels[train])
                loss.backward()
                optimiser.step()
                if step % 50 == 0 or step == cfg.steps - 1:
                    context.progress("serac scope classifier: training", step + 1, cfg.steps)
        with torch.no_grad():
            inside = torch.sigmoid(logits(is_valid)) > cfg.threshold
            truth = labels[is_valid] > 0.5
            heldout = {"pairs": int(is_valid.sum()),
                       "in_scope_recall": float(inside[truth].float().mean())
                       if bool(truth.any()) else float("nan"),
                       "out_of_scope_specificity": float((~inside[~truth]).float().mean())
                       if bool((~truth).any()) else float("nan"),
                       "threshold": cfg.threshold}
        meta = {"heldout": json.dumps(heldout), "train_pairs": str(int(train.sum())),
                "train_seconds": f"{time.perf_counter() - start:.1f}"}
        return Classifier(classifier.mean, classifier.std, weight.detach(), scale_bias.detach(),
                          meta)
