"""Forward hooks by module name: read a module's input or output, or change its output.

A small, stateless take on ROME's nethook: a ``Trace`` lives for one ``with`` block and removes
its hooks on exit, so nothing leaks between edits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import torch

OutputEdit = Callable[[torch.Tensor, str], torch.Tensor]


class StopForward(Exception):
    """Raised from a hook to skip the rest of the forward pass once the traced layers ran."""


class Trace:
    """Record inputs/outputs of named modules during forward passes inside the block.

    ``inputs[name]`` is the first positional input, ``outputs[name]`` the (first) output.
    ``edit`` may replace a module's output (e.g. add a vector at one position); it gets the
    output tensor and the module name. With ``stop=True`` the forward pass ends (by
    ``StopForward``, swallowed on exit) after the last module in ``names`` has run.
    """

    def __init__(self, model: torch.nn.Module, names: Iterable[str], *, keep_inputs: bool = False,
                 keep_outputs: bool = False, edit: OutputEdit | None = None,
                 stop: bool = False, detach: bool = True) -> None:
        self.names = list(dict.fromkeys(names))
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self._model = model
        self._keep_inputs = keep_inputs
        self._keep_outputs = keep_outputs
        self._edit = edit
        self._stop = stop
        self._detach = detach
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._remaining: set[str] = set()

    def __enter__(self) -> "Trace":
        self._remaining = set(self.names)
        for name in self.names:
            module = self._model.get_submodule(name)
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return exc_type is StopForward

    def _hook(self, name: str) -> Callable[..., Any]:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> Any:
            if self._keep_inputs:
                self.inputs[name] = self._keep(args[0])
            first = output[0] if isinstance(output, tuple) else output
            if self._edit is not None:
                first = self._edit(first, name)
                output = (first, *output[1:]) if isinstance(output, tuple) else first
            if self._keep_outputs:
                self.outputs[name] = self._keep(first)
            self._remaining.discard(name)
            if self._stop and not self._remaining:
                raise StopForward
            return output

        return hook

    def _keep(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach() if self._detach else tensor
