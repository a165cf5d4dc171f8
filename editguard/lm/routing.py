"""A routing layer: how an editor that changes no weight (SERAC) changes what a model answers.

The editor installs a ``Router`` on the model as its child module ``editguard_router``; every
backend passes each input string through ``routed(model, texts)`` before the model reads it, so
benchmarks score "the edited model" through the same calls whatever the editor did. The router is
a module so that the run's structure check names one left installed after restore; it registers
no parameters or buffers, so the model's parameters and state dict are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

ROUTER = "editguard_router"


class Router(torch.nn.Module):
    """Rewrites input strings before the model reads them. Subclasses implement ``route``."""

    def route(self, texts: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def forward(self, *args: object) -> None:
        raise RuntimeError(f"{type(self).__name__} rewrites inputs through route(); the model "
                           "does not call it")


def router_of(model: torch.nn.Module) -> Router | None:
    found = getattr(model, ROUTER, None)
    return found if isinstance(found, Router) else None


def install(model: torch.nn.Module, router: Router) -> None:
    if router_of(model) is not None:
        raise RuntimeError(f"{type(model).__name__} already has a router installed")
    if any(True for _ in router.parameters()) or any(True for _ in router.buffers()):
        raise ValueError(f"{type(router).__name__} registers parameters or buffers; a router "
                         "must leave the model's parameters and state dict as they are")
    model.add_module(ROUTER, router)


def uninstall(model: torch.nn.Module) -> None:
    if ROUTER in model._modules:
        delattr(model, ROUTER)


def routed(model: torch.nn.Module, texts: Sequence[str]) -> list[str]:
    """``texts`` as the model's router rewrites them (unchanged when none is installed)."""
    router = router_of(model)
    if router is None:
        return list(texts)
    out = router.route(texts)
    if len(out) != len(texts):
        raise RuntimeError(f"{type(router).__name__}.route returned {len(out)} texts for "
                           f"{len(texts)}")
    return out
