"""Run a model from one of its blocks up, on a residual stream computed before.

Two editors train against a fixed lower model: the value optimisation (``split.SplitBatch``)
and MEND (``mend.upper_hidden``). Both record the stream entering block ``first`` once and, per
step, run only blocks ``first`` and up on it: ``starting_at`` trims the model's block list to
those blocks and hands block ``first`` the stored stream in place of what the embeddings give
it. The embeddings and each family's own position, mask and cache handling run as usual, so
nothing here depends on a model family beyond its block path (``ArchSpec.block``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from transformers import PreTrainedModel

from editguard.editors.layers import arch_for


def _layer_list(model: PreTrainedModel) -> tuple[torch.nn.Module, str]:
    """The module that holds the blocks' ModuleList, and the list's attribute name."""
    parent, _, attr = arch_for(model).block.removesuffix(".{}").rpartition(".")
    return model.get_submodule(parent), attr


@contextlib.contextmanager
def upper_blocks(model: PreTrainedModel, first: int) -> Iterator[None]:
    """Within the ``with``, the model's block list holds only blocks ``first`` and up; the
    original list is put back after, also when the forward fails."""
    parent, attr = _layer_list(model)
    blocks = getattr(parent, attr)
    setattr(parent, attr, torch.nn.ModuleList(list(blocks)[first:]))
    try:
        yield
    finally:
        setattr(parent, attr, blocks)


@contextlib.contextmanager
def starting_at(model: PreTrainedModel, first: int, stream: torch.Tensor) -> Iterator[None]:
    """Within the ``with``, a forward of the model runs blocks ``first`` and up only, block
    ``first`` getting ``stream`` (B, T, d) as its hidden states."""

    def replace(module: torch.nn.Module, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if args:
            return (stream.to(args[0].device, args[0].dtype), *args[1:]), kwargs
        mine = kwargs["hidden_states"]
        return args, {**kwargs, "hidden_states": stream.to(mine.device, mine.dtype)}

    block = model.get_submodule(arch_for(model).block_name(first))
    handle = block.register_forward_pre_hook(replace, with_kwargs=True)
    try:
        with upper_blocks(model, first):
            yield
    finally:
        handle.remove()
