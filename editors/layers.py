"""Per-architecture module paths, as data.

Every editor reaches a model's MLP output matrix and residual stream through an ``ArchSpec``,
never through hard-coded attribute chains. Weight layouts differ: ``nn.Linear`` stores
(out, in), GPT-2's ``Conv1D`` stores (in, out); editors do their algebra in (out, in) and let
``to_out_in`` / ``from_out_in`` translate.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from transformers import PretrainedConfig, PreTrainedModel


class UnsupportedArchitectureError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    family: str
    block: str  # the transformer block; its output is the residual stream after layer i
    mlp_out: str  # the MLP's output projection; its input is the "key" of ROME/MEMIT
    layout: Literal["out_in", "in_out"]
    n_layers_attr: str
    attn_out: str  # the attention's output projection (PMET adds a delta to its output)

    def block_name(self, layer: int) -> str:
        return self.block.format(layer)

    def mlp_out_name(self, layer: int) -> str:
        return self.mlp_out.format(layer)

    def attn_out_name(self, layer: int) -> str:
        return self.attn_out.format(layer)

    def weight_name(self, layer: int) -> str:
        return self.mlp_out.format(layer) + ".weight"

    def layer_of(self, module: str) -> int:
        """The block a module lives in: 5 for "model.layers.5.mlp.down_proj" (and for
        "model.layers.5" itself)."""
        prefix = self.block.removesuffix("{}")
        index = module.removeprefix(prefix).split(".", 1)[0]
        if not module.startswith(prefix) or not index.isdigit():
            raise ValueError(f"{module!r} is not inside a block of a {self.family} model "
                             f"({self.block.format('<i>')})")
        return int(index)


LLAMA = ArchSpec("llama", "model.layers.{}", "model.layers.{}.mlp.down_proj", "out_in",
                 "num_hidden_layers", "model.layers.{}.self_attn.o_proj")
GPT2 = ArchSpec("gpt2", "transformer.h.{}", "transformer.h.{}.mlp.c_proj", "in_out", "n_layer",
                "transformer.h.{}.attn.c_proj")
GPT_NEOX = ArchSpec("gpt_neox", "gpt_neox.layers.{}", "gpt_neox.layers.{}.mlp.dense_4h_to_h",
                    "out_in", "num_hidden_layers", "gpt_neox.layers.{}.attention.dense")
GPTJ = ArchSpec("gptj", "transformer.h.{}", "transformer.h.{}.mlp.fc_out", "out_in", "n_layer",
                "transformer.h.{}.attn.out_proj")

# config.model_type -> spec. LLaMA-style decoders share module names.
ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": LLAMA,
    "qwen3": LLAMA,
    "gemma": LLAMA,
    "gemma2": LLAMA,
    "gemma3_text": LLAMA,
    "olmo2": LLAMA,
    "gpt2": GPT2,
    "gpt_neox": GPT_NEOX,
    "gptj": GPTJ,
}


def _config_of(model: PreTrainedModel | PretrainedConfig) -> PretrainedConfig:
    return model if isinstance(model, PretrainedConfig) else model.config


def arch_for(model: PreTrainedModel | PretrainedConfig) -> ArchSpec:
    """The module paths of a model, known from the model or from its config alone."""
    model_type = getattr(_config_of(model), "model_type", None)
    spec = ARCHITECTURES.get(str(model_type))
    if spec is None:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} ({type(model).__name__}) is not supported; supported "
            f"model types: {', '.join(sorted(ARCHITECTURES))}. Add its module paths to "
            "editors/layers.py:ARCHITECTURES to support it."
        )
    return spec


def n_layers(model: PreTrainedModel | PretrainedConfig) -> int:
    return int(getattr(_config_of(model), arch_for(model).n_layers_attr))


def layer_field(default: Any) -> Any:
    """A settings field that names a layer index (or a tuple of them): checked against the
    model's depth as soon as its config is known, before any weights load."""
    return dataclasses.field(default=default, metadata={"layer_index": True})


def named_layers(settings: Any) -> dict[str, list[int]]:
    """The ``layer_field`` values of a settings record, each as a list."""
    out = {}
    for field in dataclasses.fields(settings):
        if field.metadata.get("layer_index"):
            value = getattr(settings, field.name)
            out[field.name] = list(value) if isinstance(value, (list, tuple)) else [value]
    return out


def check_layers(model: PreTrainedModel | PretrainedConfig, layers: list[int], method: str,
                 key: str = "layer", config_file: str | None = None) -> None:
    """Refuse layer indices the model does not have; ``config_file`` is where the method's
    defaults live, named in the fix."""
    total = n_layers(model)
    bad = [layer for layer in layers if not 0 <= layer < total]
    if bad:
        shown = layers[0] if len(layers) == 1 else list(layers)
        raise ValueError(
            f"{method}: {key} = {shown} is outside this {total}-layer model (no layer "
            f"{', '.join(map(str, bad))}); use layers in 0..{total - 1} "
            f"(--method-opt {method}.{key}=...{f', or {config_file}' if config_file else ''})"
        )


def check_increasing(method: str, layers: tuple[int, ...]) -> None:
    """Refuse a multi-layer method's layer list unless it is non-empty, increasing and has no
    repeats (the order its updates are applied in)."""
    if list(layers) != sorted(set(layers)) or not layers:
        raise ValueError(f"{method}: layers {list(layers)} must be non-empty, increasing and "
                         f"without repeats (--method-opt {method}.layers=[4,5,6])")


def to_out_in(weight: torch.Tensor, spec: ArchSpec) -> torch.Tensor:
    """View a projection weight as (out, in)."""
    return weight if spec.layout == "out_in" else weight.T


def from_out_in(delta: torch.Tensor, spec: ArchSpec) -> torch.Tensor:
    """Lay an (out, in) update out like the stored weight."""
    return delta if spec.layout == "out_in" else delta.T


# The model families that per-family hyperparameter tables (editors/configs/*.toml) may name.
FAMILIES: frozenset[str] = frozenset(spec.family for spec in ARCHITECTURES.values())
