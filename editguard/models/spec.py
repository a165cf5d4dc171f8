"""What the user asked for: a model source, dtype and device, and its short name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch


class ModelLoadError(ValueError):
    pass


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    source: str  # embedded alias, local directory or hub id
    dtype: str = "float32"
    device: str = "auto"
    trust_remote_code: bool = False
    shards: int = 1  # accelerators the model is split over (--gpus-per-worker)

    @property
    def label(self) -> str:
        return model_label(self.source)


def model_label(source: str) -> str:
    """A short id for test names: the last path component (or the alias), lower-case."""
    tail = Path(source.rstrip("/")).name or source
    return re.sub(r"[^a-z0-9.]+", "-", tail.lower()).strip("-")


def resolve_device(name: str) -> torch.device:
    """``auto`` = the current accelerator (CUDA, ROCm, MPS, XPU) if there is one, else the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.accelerator.is_available():
        accelerator = torch.accelerator.current_accelerator()
        if accelerator is not None:
            return torch.device(accelerator.type, torch.accelerator.current_device_index())
    return torch.device("cpu")


def available_devices() -> list[str]:
    """``cpu`` and every device of the current accelerator, e.g. ``["cpu", "cuda:0"]``."""
    out = ["cpu"]
    if torch.accelerator.is_available():
        accelerator = torch.accelerator.current_accelerator()
        if accelerator is not None:
            out += [f"{accelerator.type}:{i}" for i in range(torch.accelerator.device_count())]
    return out


def check_device(name: str) -> None:
    """Refuse a ``--device`` this machine does not have, naming the ones it has."""
    if name == "auto":
        return
    have = available_devices()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ModelLoadError(f"--device {name!r} is not a device name; use auto or one of "
                             f"{', '.join(have)}") from None
    if device.type == "cpu":
        return
    wanted = str(device) if device.index is not None else f"{device.type}:0"
    if wanted not in have:
        raise ModelLoadError(f"--device {name!r}: this machine has {', '.join(have)}; use "
                             "--device auto (the accelerator if any, else cpu) or one of those")
