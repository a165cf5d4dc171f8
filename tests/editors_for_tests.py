"""Editors the tests plug in by import path: each does one thing the suite must notice."""

from __future__ import annotations

import dataclasses
import os
import signal

import torch

from editguard.editors.base import EditorBase
from editguard.editors.ft import FineTuneEditor


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """Editors that only break things take no settings."""


class NoOp(EditorBase):
    """Claims to edit and changes nothing: the efficacy test must catch it."""
    name = "noop"
    settings = NoSettings

    def _parameter_names(self, model):
        return []

    def _apply(self, model, tokenizer, requests):
        return {}


class Damage(EditorBase):
    """Adds seeded noise (one weight-std) to every MLP output matrix, as a harmful edit does."""
    name = "damage"
    settings = NoSettings

    def _parameter_names(self, model):
        return [n for n, _ in model.named_parameters() if n.endswith("mlp.down_proj.weight")]

    def _apply(self, model, tokenizer, requests):
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name in self._parameter_names(model):
                w = model.get_parameter(name)
                w.add_(torch.randn(w.shape, generator=gen) * w.std())
        return {}


class NaN(EditorBase):
    """Turns an MLP matrix into NaN: the model collapses."""
    name = "nan"
    settings = NoSettings

    def _parameter_names(self, model):
        return ["model.layers.1.mlp.down_proj.weight"]

    def _apply(self, model, tokenizer, requests):
        with torch.no_grad():
            model.get_parameter(self._parameter_names(model)[0]).fill_(float("nan"))
        return {}


class Drift(FineTuneEditor):
    """FT-L that also nudges the final norm, which it does not declare: its restore must fail,
    and nothing scored after it may see the leftover change."""
    name = "drift"  # sorts before "ft", so its trajectory runs first

    def _apply(self, model, tokenizer, requests):
        norm = model.get_parameter("model.norm.weight")
        with torch.no_grad():  # non-uniform, so that rankings (and scores) change
            norm.add_(torch.randn(norm.shape, generator=torch.Generator().manual_seed(0)))
        return super()._apply(model, tokenizer, requests)


class Crash(FineTuneEditor):
    """FT-L whose process dies (SIGKILL, as the out-of-memory killer sends) on its second edit:
    the run must report the crash once and keep every finished row."""
    name = "crash"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._calls = 0

    def _apply(self, model, tokenizer, requests):
        self._calls += 1
        if self._calls == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._apply(model, tokenizer, requests)


class Broken(NoOp):
    """An editor with a bug in its preparation: the run names where it was raised."""
    name = "broken"

    def _prepare(self, model, tokenizer):
        return {}["statistics"]
