"""Tiny random-init causal LMs (LLaMA and GPT-2 layouts) with SmolLM2's real tokenizer."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          PreTrainedModel, PreTrainedTokenizerBase)

from editguard.data.corpora import load_corpus
from editguard.editors.base import Editor, PrepareContext
from editguard.editors.registry import create
from editguard.models.embedded import EMBEDDED


def smollm_tokenizer() -> PreTrainedTokenizerBase:
    entry = EMBEDDED["smollm2-135m"]
    spec = importlib.util.find_spec(entry.package)
    assert spec is not None and spec.submodule_search_locations, "run scripts/setup.sh first"
    folder = list(spec.submodule_search_locations)[0]
    return AutoTokenizer.from_pretrained(folder, gguf_file=entry.gguf_file)


# With the usual 0.02, a 64-wide random model's logits are nearly uniform (std ~0.16) and no
# edit can move a log-probability by more than about a nat; 0.2 gives edits room to show.
INIT_RANGE = 0.2


def tiny_model(arch: str, vocab_size: int, seed: int = 0, layers: int = 4) -> PreTrainedModel:
    torch.manual_seed(seed)
    if arch == "llama":
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=layers, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=512,
                             tie_word_embeddings=True, initializer_range=INIT_RANGE)
        model: PreTrainedModel = LlamaForCausalLM(config)
    elif arch == "gpt2":
        config = GPT2Config(vocab_size=vocab_size, n_embd=64, n_layer=layers, n_head=4,
                            n_positions=512, initializer_range=INIT_RANGE)
        model = GPT2LMHeadModel(config)
    else:
        raise ValueError(arch)
    return model.eval()


def save_tiny(arch: str, tokenizer: PreTrainedTokenizerBase, folder: Path, seed: int = 0) -> Path:
    model = tiny_model(arch, len(tokenizer), seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Layer overrides that fit a 4-layer model (the per-family defaults assume real depths).
TINY_METHOD_OPTIONS = {
    "ft": {"layer": 1, "norm_constraint": 0.05, "lr": 0.01},
    "rome": {"layer": 1, "stats_tokens": 3000, "context_templates": 2},
    "memit": {"layers": (1, 2), "stats_tokens": 3000, "context_templates": 2,
              "mom2_update_weight": 1.0},
    # 1.0 sits inside both tiny models' key spectra (LLaMA 0.47 .. 13, GPT-2 0.03 .. 110)
    "grace": {"layer": 2, "n_iter": 20},
    "kn": {"steps": 4},
    # 40 GeoNames training edits, not 983: the classifier trains in about a second
    "serac": {"layer": 2, "train_edits": 40, "steps": 100},
    # 40 training edits, 30 steps of a rank-16 network: trains in seconds
    "mend": {"layers": (2, 3), "rank": 16, "steps": 30, "train_edits": 40, "lr": 1e-3,
             "edit_lr": 1e-2},
    "ultraedit": {"layers": (1, 2, 3), "lr": 0.05},
    "pmet": {"layers": (1, 2), "stats_tokens": 3000, "context_templates": 2,
             "mom2_update_weight": 1.0, "clamp_norm_factor": 4.0, "v_weight_decay": 1e-3},
    "alphaedit": {"layers": (1, 2), "stats_tokens": 3000, "context_templates": 2,
                  "nullspace_threshold": 1.0, "l2": 1.0},
}


def prepared_editor(method: str, arch: str, tokenizer: PreTrainedTokenizerBase,
                    cache_dir: Path) -> tuple[PreTrainedModel, Editor]:
    """A tiny ``arch`` model and ``method``'s editor with its tiny options, prepared on it."""
    model = tiny_model(arch, len(tokenizer))
    editor = create(method, TINY_METHOD_OPTIONS[method])
    editor.prepare(model, tokenizer, prepare_context(cache_dir, f"tiny-{arch}"))
    return model, editor


def prepare_context(cache_dir: Path, fingerprint: str = "tiny") -> PrepareContext:
    """What the run hands an editor at ``prepare``: the real corpus provider, a temp cache."""
    return PrepareContext(fingerprint=fingerprint, cache_dir=cache_dir, corpus=load_corpus)


def check_damaged_artifact_is_retrained(files: list[Path], key: str,
                                        prepared: Callable[[], dict[str, Any]]) -> None:
    """Flip a byte in the trained artifact stored for ``key`` (one of ``files``): the next
    ``prepared()`` (which prepares an editor and returns its artifact provenance) must set the
    file aside with a ``CacheRepairWarning`` and retrain, and the one after read it back."""
    from editguard.integrity import CacheRepairWarning

    target = next(f for f in files if key[:24] in f.name)
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF  # a flipped byte in the tensors
    target.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repaired = prepared()
    assert repaired["cache"].startswith("recomputed: ") and "checksum" in repaired["cache"]
    assert any(issubclass(w.category, CacheRepairWarning) for w in caught)
    assert prepared()["cache"] == "read"
