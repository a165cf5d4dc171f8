"""The editor contract: what an edit asks for, what an editor does, and how it is undone."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editors.hparams import build, family_defaults
from editors.layers import arch_for


@dataclasses.dataclass(frozen=True)
class Neighbour:
    """A prompt about something else that the edit must leave alone, and its expected answer."""

    prompt: str
    target: str


@dataclasses.dataclass(frozen=True)
class EditRequest:
    """One fact to rewrite: ``prompt.format(subject)`` should be completed by ``target_new``.

    ``prompt`` holds exactly one ``{}`` where the subject goes (CounterFact's convention).
    Targets are stored without a leading space; scoring adds the separator.
    """

    case_id: str
    prompt: str
    subject: str
    target_new: str
    target_true: str
    paraphrase_prompts: tuple[str, ...] = ()
    neighbourhood: tuple[Neighbour, ...] = ()
    relation: str = ""

    def __post_init__(self) -> None:
        if self.prompt.count("{}") != 1:
            raise ValueError(
                f"edit {self.case_id!r}: prompt {self.prompt!r} must contain exactly one '{{}}' "
                "where the subject goes"
            )
        if not self.subject or not self.target_new:
            raise ValueError(f"edit {self.case_id!r}: subject and target_new must be non-empty")

    @property
    def text(self) -> str:
        """The rewrite prompt with the subject filled in."""
        return self.prompt.format(self.subject)


class EditHandle:
    """Undoes one edit (or a chain of them) by copying the original tensors back.

    ``originals`` maps parameter names to copies taken before the first change. ``restore`` is
    idempotent and exact: it copies, it never subtracts an update.
    """

    def __init__(self, model: torch.nn.Module, originals: Mapping[str, torch.Tensor],
                 stats: Mapping[str, Any] | None = None) -> None:
        self._model = model
        self._originals = dict(originals)
        self.stats: dict[str, Any] = dict(stats or {})

    @classmethod
    def snapshot(cls, model: torch.nn.Module, names: Sequence[str]) -> "EditHandle":
        """Take copies of the named parameters before they are changed."""
        params = dict(model.named_parameters())
        missing = [n for n in names if n not in params]
        if missing:
            raise KeyError(f"no parameters named {missing} in {type(model).__name__}")
        return cls(model, {n: params[n].detach().clone() for n in names})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._originals))

    def merge(self, later: "EditHandle") -> None:
        """Absorb a later edit: keep the oldest copy of each parameter, so restore undoes both."""
        for name, tensor in later._originals.items():
            self._originals.setdefault(name, tensor)
        for key, value in later.stats.items():
            self.stats.setdefault(key, value)

    @torch.no_grad()
    def restore(self) -> None:
        params = dict(self._model.named_parameters())
        for name, original in self._originals.items():
            params[name].copy_(original)

    @torch.no_grad()
    def delta_norms(self) -> dict[str, float]:
        """Frobenius norm of (current - original) for every parameter this handle covers."""
        params = dict(self._model.named_parameters())
        return {
            n: float((params[n].detach().float() - o.float()).norm())
            for n, o in sorted(self._originals.items())
        }


@runtime_checkable
class Editor(Protocol):
    """A knowledge-editing method.

    ``name`` is the registry key. ``prepare`` runs once on the unedited model (statistics,
    templates) before the first ``apply``. ``apply`` edits ``model`` in place and returns the handle that
    undoes it. ``parameter_names`` lists every parameter ``apply`` may change, so callers can
    check that nothing else moved. ``config`` is the validated hyperparameter record, saved with
    every result as provenance.
    """

    name: ClassVar[str]
    supports_batch: ClassVar[bool]

    @property
    def config(self) -> Mapping[str, Any]: ...

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                fingerprint: str) -> None: ...

    def parameter_names(self, model: PreTrainedModel) -> list[str]: ...

    def apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              requests: Sequence[EditRequest]) -> EditHandle: ...


class EditorBase:
    """Shared plumbing for the built-in editors: configuration, preparation, snapshots.

    A subclass sets ``name``, ``settings`` (a frozen dataclass of hyperparameters) and
    implements ``_parameter_names``, ``_prepare`` (work on the unedited model, e.g. statistics)
    and ``_apply`` (change the weights in place). ``overrides`` beat the per-family defaults in
    ``editors/configs/<name>.toml``; unknown keys are errors.
    """

    name: ClassVar[str]
    supports_batch: ClassVar[bool] = True
    settings: ClassVar[type]

    def __init__(self, overrides: Mapping[str, Any] | None = None, *, cache_dir: Path,
                 seed: int = 0) -> None:
        self._overrides = dict(overrides or {})
        self._cache_dir = Path(cache_dir)  # where statistics are cached
        self._seed = seed
        self._cfg: Any = None
        self._prepared_for: str | None = None
        self.provenance: dict[str, Any] = {}

    @property
    def config(self) -> Mapping[str, Any]:
        if self._cfg is None:
            return dict(self._overrides)
        return dataclasses.asdict(self._cfg)

    def resolve(self, model: PreTrainedModel) -> Any:
        if self._cfg is None:
            family = arch_for(model).family
            values = {**family_defaults(self.name, family), **self._overrides}
            self._cfg = build(self.settings, values, f"{self.name} config ({family})")
        return self._cfg

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                fingerprint: str) -> None:
        """Work that must see the unedited weights; idempotent per model fingerprint."""
        self.resolve(model)
        if self._prepared_for != fingerprint:
            self._prepare(model, tokenizer, fingerprint)
            self._prepared_for = fingerprint

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
        if self._prepared_for is None:
            raise RuntimeError(f"{self.name}: call prepare() on the unedited model first")
        handle = EditHandle.snapshot(model, self.parameter_names(model))
        try:
            stats = self._apply(model, tokenizer, list(requests))
        except BaseException:
            handle.restore()  # a failed edit leaves the weights as they were
            raise
        handle.stats.update(stats)
        return handle

    # subclass hooks
    def _parameter_names(self, model: PreTrainedModel) -> list[str]:
        raise NotImplementedError

    def _prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 fingerprint: str) -> None:
        return None

    def _apply(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               requests: list[EditRequest]) -> dict[str, Any]:
        raise NotImplementedError
