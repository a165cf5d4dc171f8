"""Backend names -> classes: the built-ins, the ``editguard.backends`` entry points, and
``package.module:Class`` paths. A backend is constructed as ``cls(model, tokenizer)`` and
satisfies ``editguard.backends.base.Backend``."""

from __future__ import annotations

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.backends.base import Backend
from editguard.registry import Registry, UnknownPluginError

ENTRY_POINT_GROUP = "editguard.backends"
DEFAULT = "hf"


class UnknownBackendError(UnknownPluginError):
    pass


BACKENDS: Registry[Backend] = Registry(
    noun="backend", option="--backend", group=ENTRY_POINT_GROUP,
    builtins={"hf": "editguard.backends.hf:HFBackend"},
    required=("name", "loglikelihood", "generate", "describe"),
    contract="editguard.backends.base.Backend", error=UnknownBackendError)


def resolve(spec: str) -> type[Backend]:
    return BACKENDS.resolve(spec)


def create(spec: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> Backend:
    return resolve(spec)(model, tokenizer)  # type: ignore[call-arg]
