"""Where a model's weights live."""

from __future__ import annotations

import torch


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (where its inputs must go)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError(f"{type(model).__name__} has no parameters") from None


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
