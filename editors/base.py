"""The editor contract: what an editor is handed, what it does, and how it is undone.

An editor knows nothing about pytest, benchmarks or backends. What it needs from the run
(cache directory, corpus provider, seed, progress reporter) arrives in a ``PrepareContext``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from editguard.editors.hparams import family_defaults, shipped_config
from editguard.editors.layers import arch_for, check_layers, named_layers
from editguard.edits.request import EditRequest, Neighbour
from editguard.lm.corpus import CorpusProvider
from editguard.settings import build

__all__ = ["EditHandle", "EditRequest", "Editor", "EditorBase", "Neighbour", "PrepareContext",
           "Progress", "silent"]

# What an editor reports about one apply() call (losses, steps, norms): plain JSON values.
EditStats = Mapping[str, object]


class Progress(Protocol):
    """Told how far a long phase has got: ``progress("covariance statistics", 3, 50)``."""

    def __call__(self, phase: str, done: int, total: int) -> None: ...


def silent(phase: str, done: int, total: int) -> None:
    """A progress reporter that reports nothing."""


@dataclasses.dataclass(frozen=True)
class PrepareContext:
    """What the run hands an editor before its first edit.

    ``fingerprint`` identifies the unedited weights (every cache key includes it); ``cache_dir``
    is where the editor may keep artifacts such as covariance statistics; ``corpus`` turns a
    corpus spec (``"wikipedia-en"``, ``"file:PATH"``) into documents.
    """

    fingerprint: str
    cache_dir: Path
    corpus: CorpusProvider
    seed: int = 0
    progress: Progress = silent


class EditHandle:
    """Undoes one edit (or a chain of them) by copying the original tensors back.

    ``originals`` maps parameter names to copies taken before the first change. ``restore`` is
    idempotent and exact: it copies, it never subtracts an update. ``batches`` holds what the
    editor reported for each ``apply`` call the handle covers, in order. An editor that keeps
    state across edits (AlphaEdit's record of edited keys) registers ``on_restore`` callbacks
    that put it back; restore runs them newest first, after the tensors.
    """

    def __init__(self, model: torch.nn.Module, originals: Mapping[str, torch.Tensor],
                 batches: Sequence[EditStats] = ()) -> None:
        self._model = model
        self._originals = dict(originals)
        self.batches: list[dict[str, object]] = [dict(b) for b in batches]
        self._undo: list[Callable[[], None]] = []

    def on_restore(self, undo: Callable[[], None]) -> None:
        """Call ``undo`` on restore (it must be idempotent, as restore is)."""
        self._undo.append(undo)

    @classmethod
    def snapshot(cls, model: torch.nn.Module, names: Sequence[str]) -> EditHandle:
        """Take copies of the named parameters before they are changed."""
        params = dict(model.named_parameters())
        missing = [n for n in names if n not in params]
        if missing:
            raise KeyError(f"no parameters named {missing} in {type(model).__name__}")
        return cls(model, {n: params[n].detach().clone() for n in names})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._originals))

    def merge(self, later: EditHandle) -> None:
        """Absorb a later edit: keep the oldest copy of each parameter, so restore undoes both,
        and every batch's stats."""
        for name, tensor in later._originals.items():
            self._originals.setdefault(name, tensor)
        self.batches.extend(later.batches)
        self._undo.extend(later._undo)

    @torch.no_grad()
    def restore(self) -> None:
        params = dict(self._model.named_parameters())
        for name, original in self._originals.items():
            params[name].copy_(original)
        for undo in reversed(self._undo):
            undo()

    @torch.no_grad()
    def change_norms(self) -> dict[str, dict[str, float]]:
        """Per covered parameter: Frobenius norm of (current - original) and of the original."""
        params = dict(self._model.named_parameters())
        out: dict[str, dict[str, float]] = {}
        for name, original in sorted(self._originals.items()):
            current = params[name].detach().float()
            out[name] = {"delta_fro": float((current - original.float()).norm()),
                         "weight_fro": float(original.float().norm())}
        return out


@runtime_checkable
class Editor(Protocol):
    """A knowledge-editing method, constructed as ``cls(overrides)``.

    ``name`` is the registry key. ``prepare`` runs once on the unedited model (statistics,
    templates) before the first ``apply``. ``apply`` edits ``model`` in place and returns the
    handle that undoes it. ``parameter_names`` lists every parameter ``apply`` may change, so
    callers can check that nothing else moved. ``config`` is the validated hyperparameter
    record, saved with every result as provenance.
    """

    name: ClassVar[str]
    supports_batch: ClassVar[bool]

    @property
    def config(self) -> Mapping[str, object]: ...

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                context: PrepareContext) -> None: ...

    def parameter_names(self, model: PreTrainedModel) -> list[str]: ...

    def apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              requests: Sequence[EditRequest]) -> EditHandle: ...


class EditorBase:
    """Shared plumbing for editors: configuration, preparation, snapshots.

    A subclass sets ``name``, ``settings`` (a frozen dataclass of hyperparameters) and
    implements ``_parameter_names``, ``_prepare`` (work on the unedited model, e.g. statistics)
    and ``_apply`` (change the weights in place). ``overrides`` beat the per-family defaults in
    ``editors/configs/<name>.toml``; unknown keys are errors. ``self.context`` holds the
    ``PrepareContext`` once prepared; ``self.provenance`` whatever the editor wants recorded.
    """

    name: ClassVar[str]
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type]

    def __init__(self, overrides: Mapping[str, object] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._cfg: Any = None  # an instance of ``settings``, typed by each subclass's use
        self._context: PrepareContext | None = None
        self.provenance: dict[str, object] = {}

    @property
    def config(self) -> Mapping[str, object]:
        if self._cfg is None:
            return dict(self._overrides)
        return dataclasses.asdict(self._cfg)

    @property
    def context(self) -> PrepareContext:
        if self._context is None:
            raise RuntimeError(f"{self.name}: call prepare() on the unedited model first")
        return self._context

    def resolve(self, model: PreTrainedModel | PretrainedConfig) -> Any:
        """The validated settings for ``model``'s family (built once), checked against the
        model: every ``layer_field`` names a layer it has. A config alone is enough, so a run
        checks this at start-up, before loading weights."""
        if self._cfg is None:
            family = arch_for(model).family
            values = {**family_defaults(self.name, family), **self._overrides}
            cfg: Any = build(self.settings, values, f"{self.name} config ({family})")
            for key, layers in named_layers(cfg).items():
                check_layers(model, layers, self.name, key, shipped_config(self.name))
            self._validate(cfg)
            self._cfg = cfg
        return self._cfg

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                context: PrepareContext) -> None:
        """Work that must see the unedited weights; idempotent per model fingerprint."""
        self.resolve(model)
        if self._context is None or self._context.fingerprint != context.fingerprint:
            self._context = context
            self._prepare(model, tokenizer)

    def parameter_names(self, model: PreTrainedModel) -> list[str]:
        self.resolve(model)
        return self._parameter_names(model)

    def apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              requests: Sequence[EditRequest]) -> EditHandle:
        if not requests:
            raise ValueError(f"{self.name}: no edit requests given")
        if len(requests) > 1 and not self.supports_batch:
            raise ValueError(f"{self.name} edits one fact at a time; got a batch of "
                             f"{len(requests)} (use --batch-size 1)")
        self.context  # raises unless prepared
        handle = EditHandle.snapshot(model, self.parameter_names(model))
        undo = self._checkpoint()
        if undo is not None:
            handle.on_restore(undo)
        try:
            stats = self._apply(model, tokenizer, list(requests))
        except BaseException:
            handle.restore()  # a failed edit leaves the weights as they were
            raise
        handle.batches.append(dict(stats))
        return handle

    # subclass hooks
    def _validate(self, cfg: Any) -> None:
        """Checks across settings that a single field's type cannot say; raise ValueError."""

    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        raise NotImplementedError

    def _checkpoint(self) -> Callable[[], None] | None:
        """Before each apply: a callable that puts the editor's own state back as it is now,
        for an editor whose edits depend on earlier ones (None: no such state)."""
        return None

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        return None

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> EditStats:
        raise NotImplementedError
