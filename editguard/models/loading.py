"""Loading the models under test (embedded default, local directories, hub ids), fingerprinted."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlsplit

import torch
from huggingface_hub import constants, snapshot_download
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig,
                          PreTrainedModel, PreTrainedTokenizerBase)

from editguard.editors.layers import ARCHITECTURES
from editguard.lm.device import model_device
from editguard.models.digest import fingerprint, tensor_digest
from editguard.models.embedded import EMBEDDED, EmbeddedModelMissing, embedded_dir
from editguard.models.spec import DTYPES, ModelLoadError, ModelSpec, resolve_device


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                   "all_proxy")


@dataclasses.dataclass
class LoadedModel:
    spec: ModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str
    digests: dict[str, str]  # parameter name -> blake2b of its bytes at load time
    path: str  # where the weights were read from
    # module name -> (class, hooks); what an editor that is not a weight edit must leave behind
    structure: dict[str, tuple[str, int, int, int]] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.structure = module_structure(self.model)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def changed_structure(self) -> list[str]:
        """Modules added, removed or replaced since load, and modules with hooks they did not
        have then (a wrapper or hook an editor left installed), one description each."""
        now = module_structure(self.model)
        out = [f"module {n} added ({now[n][0]})" for n in sorted(set(now) - set(self.structure))]
        out += [f"module {n} removed" for n in sorted(set(self.structure) - set(now))]
        for name in sorted(set(now) & set(self.structure)):
            (cls, *hooks), (was, *had) = now[name], self.structure[name]
            if cls != was:
                out.append(f"module {name} is a {cls}, was a {was}")
            elif hooks != had:
                kinds = ("forward", "forward pre", "backward")
                extra = [f"{k} hooks {b} -> {a}" for k, a, b in zip(kinds, hooks, had) if a != b]
                out.append(f"module {name}: {', '.join(extra)}")
        return out

    def changed_parameters(self, skip: Collection[str] = ()) -> list[str]:
        """Parameters whose bytes differ from load time (those in ``skip`` are not checked)."""
        return [n for n, p in sorted(self.model.named_parameters())
                if n not in skip and tensor_digest(p) != self.digests[n]]


def module_structure(model: torch.nn.Module) -> dict[str, tuple[str, int, int, int]]:
    """Per module: its class and how many forward, forward-pre and backward hooks it has."""
    return {name: (type(m).__name__, len(m._forward_hooks), len(m._forward_pre_hooks),
                   len(m._backward_hooks))
            for name, m in model.named_modules()}


def locate(spec: ModelSpec, home: Path) -> str:
    """Where to read the weights from; checks hub ids without downloading the weights."""
    return _found(spec, home)[0]


def read_config(spec: ModelSpec, home: Path) -> PretrainedConfig:
    """The model's config, without its weights: what start-up checks need (its depth)."""
    return _found(spec, home)[1]


def _found(spec: ModelSpec, home: Path) -> tuple[str, PretrainedConfig]:
    """Where the model is, and its config (read once, its architecture checked)."""
    if spec.source in EMBEDDED:
        path = str(embedded_dir(spec.source, home))
        return path, check_config(spec, path)
    if Path(spec.source).is_dir():
        return spec.source, check_config(spec)
    if Path(spec.source).exists():
        raise ModelLoadError(f"--models {spec.source!r} is a file; pass the directory that holds "
                             "config.json and the weights")
    if looks_like_path(spec.source):
        raise ModelLoadError(f"--models {spec.source!r}: no such directory; pass an existing "
                             "directory saved by save_pretrained, a hub id such as "
                             "'HuggingFaceTB/SmolLM2-135M', or the embedded default smollm2-135m")
    return _hub_source(spec)


def _hub_source(spec: ModelSpec) -> tuple[str, PretrainedConfig]:
    """A hub id as ``from_pretrained`` should read it: the id itself while the hub answers;
    else its snapshot in the local hub cache, so that nothing waits on the network; refused at
    once when it has neither (the hub client would retry for half a minute first)."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    if not offline and hub_reachable():
        return spec.source, check_config(spec)
    try:
        path = snapshot_download(spec.source, local_files_only=True)
    except (OSError, ValueError) as err:
        why = ("HF_HUB_OFFLINE=1 is set" if offline else
               f"the hub, {constants.ENDPOINT}, cannot be reached from this machine")
        raise ModelLoadError(
            f"could not load model {spec.source!r}: it is not a local directory, {why}, and it "
            f"is not in the local hub cache ({type(err).__name__}). Download it where the hub is "
            f"reachable ('hf download {spec.source} --local-dir DIR'), copy DIR here and pass "
            "--models DIR; or use the embedded default --models smollm2-135m."
        ) from None
    return str(path), check_config(spec, path)


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within ``timeout_s``. Behind a
    proxy the direct connection says nothing, so the answer is yes and the hub client decides."""
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


class RemoteCodeIgnored(UserWarning):
    """A model's config asks for its own code, and the built-in classes ran instead."""


def ignored_remote_code(spec: ModelSpec, config: PretrainedConfig) -> RemoteCodeIgnored | None:
    """The notice for a model whose config names custom code (``auto_map``) that is not run
    because ``--trust-remote-code`` is off; transformers then uses its built-in classes for
    the model type without a word."""
    auto_map = getattr(config, "auto_map", None)
    if spec.trust_remote_code or not auto_map:
        return None
    return RemoteCodeIgnored(
        f"model {spec.source!r} asks for its own code ({', '.join(sorted(auto_map))} in its "
        f"config's auto_map); it was not run: transformers' built-in {config.model_type!r} "
        "classes load the weights instead. If the custom code matters (the scores would differ), "
        "pass --trust-remote-code after reading that code.")


def looks_like_path(source: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else is meant as a local path."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source


def check_config(spec: ModelSpec, where: str | None = None) -> PretrainedConfig:
    """Read only the config (from ``where``, default the source), check the architecture is
    supported, and return it."""
    try:
        config = AutoConfig.from_pretrained(where or spec.source,
                                            trust_remote_code=spec.trust_remote_code)
    except (OSError, ValueError) as err:
        if Path(spec.source).is_dir():
            raise ModelLoadError(f"--models {spec.source!r}: cannot read its config.json "
                                 f"({err}); pass a directory saved by save_pretrained") from err
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ModelLoadError(
            f"could not load model {spec.source!r}: it is not a local directory, and reading it "
            f"from the Hugging Face hub failed ({type(err).__name__}: {str(err).splitlines()[0]})"
            f"{' (HF_HUB_OFFLINE=1 is set)' if offline else ''}. On a machine without the hub, "
            f"download it elsewhere ('hf download {spec.source} --local-dir DIR'), copy DIR here "
            "and pass --models DIR; or use the embedded default --models smollm2-135m."
        ) from err
    if config.model_type not in ARCHITECTURES:
        raise ModelLoadError(
            f"model {spec.source!r} has architecture {config.model_type!r}, which the editors do "
            f"not support; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return config


DeviceMap = str | dict[str, int | str]


def shard_memory(shards: int) -> dict[int | str, int]:
    """``max_memory`` for accelerate's ``"balanced"`` placement over the first ``shards``
    visible accelerators: their free memory, and no room for the CPU or disk, so a model that
    does not fit fails instead of running offloaded."""
    from accelerate.utils import get_max_memory

    free = get_max_memory()  # {0: bytes, 1: bytes, ..., "cpu": bytes}
    have = sorted(k for k in free if isinstance(k, int))
    if len(have) < shards:
        raise ModelLoadError(
            f"--gpus-per-worker {shards}: this process sees {len(have)} accelerator(s); give "
            f"it at least {shards} (CUDA_VISIBLE_DEVICES) or use --gpus-per-worker "
            f"{max(len(have), 1)}")
    return {k: free[k] for k in have[:shards]}


def check_placement(model: PreTrainedModel, spec: ModelSpec) -> None:
    """A sharded model must sit wholly on its accelerators: accelerate offloads what does not
    fit to the CPU or disk, which would run (slowly) instead of failing."""
    placed = getattr(model, "hf_device_map", None) or {}
    offloaded = sorted(name for name, device in placed.items() if device == "disk")
    if spec.shards > 1:
        offloaded += sorted(name for name, device in placed.items() if device == "cpu")
    if offloaded:
        raise ModelLoadError(
            f"{spec.source} does not fit on {spec.shards} accelerator(s): accelerate put "
            f"{', '.join(offloaded[:4])}{' ...' if len(offloaded) > 4 else ''} on the CPU or "
            "disk; use a larger --gpus-per-worker or a smaller --dtype (bfloat16)")


def load(spec: ModelSpec, home: Path, device_map: DeviceMap | None = None) -> LoadedModel:
    """The model and tokenizer ``spec`` names, on its device, fingerprinted.

    ``spec.shards`` > 1 splits the model over that many accelerators with accelerate's device
    map; ``device_map`` places it by an explicit map instead (module name -> device, as
    ``from_pretrained`` takes it). Either way inputs go to the first parameter's device and
    accelerate's hooks move activations between devices.
    """
    if spec.dtype not in DTYPES:
        raise ModelLoadError(f"--dtype {spec.dtype!r} is not one of {sorted(DTYPES)}")
    if spec.shards < 1:
        raise ModelLoadError(f"--gpus-per-worker {spec.shards} must be at least 1")
    path = locate(spec, home)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
    placement: dict[str, object] = {}
    if device_map is not None:
        placement = {"device_map": device_map}
    elif spec.shards > 1:
        # equal memory per device, whole decoder blocks
        placement = {"device_map": "balanced", "max_memory": shard_memory(spec.shards)}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[spec.dtype],
                                                 trust_remote_code=spec.trust_remote_code,
                                                 **placement)
    if placement:
        check_placement(model, spec)
    else:
        # transformers' typing of its wrapped ``to`` drops ``self``; the call itself is plain
        model.to(resolve_device(spec.device))  # type: ignore[arg-type]
    model.eval()
    fp, digests = fingerprint(model)
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, fingerprint=fp,
                       digests=digests, path=path)
