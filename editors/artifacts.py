"""Trained editor artifacts on disk (SERAC's scope classifier; any editor that trains a network).

One safetensors file per key: the tensors, and as metadata the key they were trained for, a
checksum of the tensors and whatever the trainer reports. ``load_or_train`` reads a file only
when key and checksum match; a damaged file is set aside (``editguard.integrity``) and the
artifact retrained. A file lock per folder makes parallel workers train it once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from filelock import FileLock
from safetensors import safe_open
from safetensors.torch import save_file

from editguard import atomic, integrity

Tensors = dict[str, torch.Tensor]
Meta = dict[str, str]


def _checksum(tensors: Tensors) -> str:
    return integrity.sha256_hex(b"".join(
        name.encode() + t.detach().cpu().contiguous().numpy().tobytes()
        for name, t in sorted(tensors.items())))


def write(path: Path, tensors: Tensors, meta: Meta, key: str) -> None:
    plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic.replacing(path) as temp:
        save_file(plain, str(temp), metadata={**meta, "key": key, "sha256": _checksum(plain)})


def read(path: Path, key: str, what: str) -> tuple[Tensors, Meta]:
    """A stored artifact, checked against its key and the checksum of its tensors."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k).clone() for k in handle.keys()}
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise integrity.CorruptCacheError(f"{path.name} is not a readable {what} "
                                          f"({type(err).__name__}: {err})") from None
    integrity.check(key, meta.get("key"), _checksum(tensors), meta.get("sha256"), path)
    return tensors, meta


def load_or_train(folder: Path, stem: str, key: str, what: str,
                  train: Callable[[], tuple[Tensors, Meta]],
                  check: Callable[[Tensors, Meta], None] | None = None
                  ) -> tuple[Tensors, Meta, str]:
    """(tensors, metadata, status) of the artifact for ``key`` in ``folder``: read back
    ("read"), or trained now ("trained", or "recomputed: <why>" when a stored file was bad).
    ``check`` may reject a readable file whose content the trainer would not have written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{key[:24]}.safetensors"
    with FileLock(str(folder / ".lock")):
        status = "trained"
        if path.exists():
            try:
                tensors, meta = read(path, key, what)
                if check is not None:
                    check(tensors, meta)
                return tensors, meta, "read"
            except (integrity.CorruptCacheError, KeyError, ValueError) as err:
                status = integrity.set_aside(path, str(err))
        tensors, meta = train()
        write(path, tensors, meta, key)
        return tensors, {**meta, "key": key}, status
