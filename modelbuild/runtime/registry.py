"""Op registries of the Core ML reference runtime.

One registry per model format (NeuralNetwork layers, ML Program ops). Kernels
register themselves with a decorator; a name registered twice is a programming
error, and asking for a name nobody registered raises `UnsupportedOpError`,
which names the op, the layer and everything that is supported.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

K = TypeVar("K")


class ModelRuntimeError(Exception):
    """Base class of the errors the reference runtime raises for a model it cannot run."""


class UnsupportedOpError(ModelRuntimeError, NotImplementedError):
    """The model uses an op or layer type that the runtime has no kernel for."""


class ShapeMismatchError(ModelRuntimeError, ValueError):
    """A layer received an input whose shape does not fit, as Core ML would refuse it."""


class OpRegistry(Generic[K]):
    """A name -> kernel table with a duplicate guard and helpful errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._kernels: dict[str, K] = {}

    def register(self, *names: str) -> Callable[[K], K]:
        """Decorator: register the decorated kernel under each of `names`."""
        if not names:
            raise TypeError("register() needs at least one op name")

        def decorate(kernel: K) -> K:
            for name in names:
                if name in self._kernels:
                    raise ValueError(
                        f"{self.kind} op {name!r} is registered twice "
                        f"({self._kernels[name]!r} and {kernel!r})"
                    )
                self._kernels[name] = kernel
            return kernel

        return decorate

    def get(self, name: str, where: str = "") -> K:
        """The kernel for `name`; `where` names the layer/op for the error message."""
        try:
            return self._kernels[name]
        except KeyError:
            at = f" (in {where})" if where else ""
            raise UnsupportedOpError(
                f"The reference runtime has no kernel for the {self.kind} op {name!r}{at}. "
                f"Supported: {', '.join(sorted(self._kernels))}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kernels

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._kernels))

    def __len__(self) -> int:
        return len(self._kernels)
