"""Second-moment statistics E[k k^T] of MLP-output inputs ("keys"), cached on disk.

ROME and MEMIT weigh their updates with the covariance of the keys a layer normally sees, so an
edit changes the layer least where real text lives. The statistics depend on the model's
weights, the layer, the corpus, how many tokens and the sequence length; all of these are in the
cache key. They must be computed on the unedited model: editors ask for them in ``prepare``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from filelock import FileLock
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard import atomic, integrity
from editguard.editors.base import PrepareContext
from editguard.editors.layers import arch_for
from editguard.editors.nethook import Trace
from editguard.lm.corpus import token_chunks
from editguard.lm.device import model_device
from editguard.lm.tokens import pad_id, right_pad


@dataclasses.dataclass(frozen=True)
class StatsSpec:
    corpus: str  # a corpus spec, resolved by the PrepareContext's corpus provider
    n_tokens: int
    seq_len: int = 256
    batch_size: int = 8

    def key(self, fingerprint: str, module: str) -> str:
        raw = json.dumps([fingerprint, module, dataclasses.asdict(self)], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class LayerStats:
    module: str
    mom2: torch.Tensor  # (d_in, d_in) float32, mean of k k^T over tokens
    n_tokens: int
    corpus: str
    corpus_source: str
    cache: str = "read"  # "read", "computed", or "recomputed: <why>" (see editguard.integrity)

    def provenance(self) -> dict[str, object]:
        return {"module": self.module, "corpus": self.corpus, "corpus_source": self.corpus_source,
                "n_tokens": self.n_tokens, "cache": self.cache}


def stats_path(cache_dir: Path, fingerprint: str, module: str, spec: StatsSpec) -> Path:
    return cache_dir / "stats" / fingerprint[:16] / f"{module}.{spec.key(fingerprint, module)}.safetensors"


def layer_stats(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, layers: Sequence[int],
                spec: StatsSpec, context: PrepareContext) -> dict[int, LayerStats]:
    """Load or compute the key second moments of ``layers`` (one forward pass for all missing)."""
    fingerprint, cache_dir = context.fingerprint, context.cache_dir
    arch = arch_for(model)
    modules = {layer: arch.mlp_out_name(layer) for layer in layers}
    paths = {layer: stats_path(cache_dir, fingerprint, m, spec) for layer, m in modules.items()}
    lock_dir = cache_dir / "stats" / fingerprint[:16]
    lock_dir.mkdir(parents=True, exist_ok=True)
    out: dict[int, LayerStats] = {}
    with FileLock(str(lock_dir / ".lock")):
        missing: dict[int, str] = {}  # layer -> why it is computed
        for layer in layers:
            key = spec.key(fingerprint, modules[layer])
            if not paths[layer].exists():
                missing[layer] = "computed"
                continue
            try:
                out[layer] = _read(paths[layer], modules[layer], key, "read")
            except integrity.CorruptCacheError as err:
                missing[layer] = integrity.set_aside(paths[layer], str(err))
        if missing:
            computed = _compute(model, tokenizer, [modules[layer] for layer in missing], spec,
                                context)
            for layer, status in missing.items():
                mom2, meta = computed[modules[layer]]
                mom2 = mom2.contiguous()
                meta = {**meta, "key": spec.key(fingerprint, modules[layer]),
                        "sha256": integrity.sha256_hex(_tensor_bytes(mom2))}
                with atomic.replacing(paths[layer]) as temp:
                    save_file({"mom2": mom2}, str(temp), metadata=meta)
                out[layer] = LayerStats(module=modules[layer], mom2=mom2,
                                        n_tokens=int(meta["n_tokens"]), corpus=meta["corpus"],
                                        corpus_source=meta["corpus_source"], cache=status)
    return {layer: out[layer] for layer in layers}


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().numpy().tobytes()


def _read(path: Path, module: str, key: str, status: str) -> LayerStats:
    """A stored statistics file, checked against its key and the checksum of its tensor."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            mom2 = handle.get_tensor("mom2").clone()  # not a view of the mapped file
        n_tokens, corpus, source = int(meta["n_tokens"]), meta["corpus"], meta["corpus_source"]
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise integrity.CorruptCacheError(f"{path.name} is not a readable statistics file "
                                          f"({type(err).__name__}: {err})") from None
    integrity.check(key, meta.get("key"), integrity.sha256_hex(_tensor_bytes(mom2)),
                    meta.get("sha256"), path)
    return LayerStats(module=module, mom2=mom2, n_tokens=n_tokens, corpus=corpus,
                      corpus_source=source, cache=status)


@torch.no_grad()
def _compute(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, modules: list[str],
             spec: StatsSpec, context: PrepareContext
             ) -> dict[str, tuple[torch.Tensor, dict[str, str]]]:
    corpus = context.corpus(spec.corpus)
    # tokenizer defaults (a BOS where the model uses one), as edit prompts and scoring have
    chunks = token_chunks(corpus, tokenizer, spec.n_tokens, spec.seq_len, add_special_tokens=True)
    device = model_device(model)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    n_batches = (len(chunks) + spec.batch_size - 1) // spec.batch_size
    for batch, start in enumerate(range(0, len(chunks), spec.batch_size)):
        context.progress(f"covariance statistics of {len(modules)} layers", batch, n_batches)
        part = chunks[start : start + spec.batch_size]
        ids, mask = right_pad(part, pad_id(tokenizer), device)  # (B, T)
        with Trace(model, modules, keep_inputs=True, stop=True) as trace:
            model(input_ids=ids, attention_mask=mask)
        keep = mask.bool()  # (B, T)
        for m in modules:
            k = trace.inputs[m][keep].double()  # (N, d_in)
            sums[m] = sums[m] + k.T @ k if m in sums else k.T @ k  # (d_in, d_in)
        count += int(keep.sum())
    context.progress(f"covariance statistics of {len(modules)} layers", n_batches, n_batches)
    meta = {"n_tokens": str(count), "corpus": corpus.name, "corpus_source": corpus.source,
            "seq_len": str(spec.seq_len)}
    return {m: ((s / count).float().cpu(), meta) for m, s in sums.items()}
