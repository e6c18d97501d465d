"""Attention modules that never take torch's fused "fast path" (imports torch).

nn.MultiheadAttention, nn.TransformerEncoderLayer and nn.TransformerEncoder run
fused kernels (`_native_multi_head_attention`, `_transformer_encoder_layer_fwd`,
nested tensors) in eval mode without grad, when `torch.backends.mha` allows it.
Tracing then records those kernels, which coremltools cannot convert. Here each
such module's class is swapped for a subclass whose forward runs with the flag
off and restores it afterwards, so the model object itself takes the composite
path in eager runs, torch.jit.trace and torch.onnx.export alike (torch.export
keeps off the fast path by itself), and no global state outlives a forward call.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

FAST_PATH_CLASSES = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder)


@contextmanager
def fastpath_disabled() -> Iterator[None]:
    """torch.backends.mha's fast path off for the duration of the block, then as it was."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


class SlowPath:
    """Mixin: the module's own forward, run with the fast path disabled.

    Under torch.export / dynamo (which cannot trace the flag's setter) the forward runs as it
    is: their make_fx tracing already keeps MultiheadAttention off the fast path.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return super().forward(*args, **kwargs)  # type: ignore[misc]
        with fastpath_disabled():
            return super().forward(*args, **kwargs)  # type: ignore[misc]


_SLOW_CLASSES: dict[type, type] = {}


def slow_class(cls: type) -> type:
    """The SlowPath subclass of `cls`, under the same module and name (printed models and exported
    scope names stay as they were)."""
    if issubclass(cls, SlowPath):
        return cls
    if cls not in _SLOW_CLASSES:
        _SLOW_CLASSES[cls] = type(cls.__name__, (SlowPath, cls), {"__module__": cls.__module__,
                                                                 "__qualname__": cls.__qualname__,
                                                                 "__doc__": cls.__doc__})
    return _SLOW_CLASSES[cls]


def disable_fast_path(model: nn.Module) -> int:
    """Swap the class of every fast-path-capable module of `model`; return how many were not yet swapped."""
    swapped = 0
    for module in model.modules():
        if isinstance(module, FAST_PATH_CLASSES) and not isinstance(module, SlowPath):
            module.__class__ = slow_class(type(module))
            swapped += 1
    return swapped
