"""Op registries of the Core ML reference runtime.

One registry per model format (NeuralNetwork layers, ML Program ops). Kernels
register themselves with a decorator. A format whose files record an opset
(ML Program functions do) makes a registry with its `first` opset; a kernel
registered `since` an opset serves that opset and every later one until a
registration with a later `since` overrides it, as coremltools'
`register_op(opset_version=...)` does, and lookup takes the file's opset.
NeuralNetwork layers are looked up by name alone.

A name registered twice for the same opset is a programming error. Asking for
a name nobody registered, or for an op the file's opset does not have yet,
raises `UnsupportedOpError`, which names the op, the opset and the layer.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

K = TypeVar("K")


class ModelRuntimeError(Exception):
    """Base class of the errors the reference runtime raises for a model it cannot run."""


class UnsupportedOpError(ModelRuntimeError, NotImplementedError):
    """The model uses an op or layer type that the runtime has no kernel for (at the model's opset)."""


class ShapeMismatchError(ModelRuntimeError, ValueError):
    """A layer received an input whose shape does not fit, as Core ML would refuse it."""


class OpRegistry(Generic[K]):
    """A (name, opset) -> kernel table with a duplicate guard and helpful errors.

    `first` is the oldest opset of the format (ordered, printable values such as
    `mil.opsets.Opset`), or None for a format without opsets.
    """

    def __init__(self, kind: str, first: Any = None) -> None:
        self.kind = kind
        self.first = first
        self._kernels: dict[str, dict[Any, K]] = {}  # name -> {since: kernel}
        self._resolved: dict[tuple[str, Any], K] = {}

    def register(self, *names: str, since: Any = None) -> Callable[[K], K]:
        """Decorator: register the decorated kernel under each of `names`, from opset `since` (default: the first)."""
        if not names:
            raise TypeError("register() needs at least one op name")
        if since is not None and self.first is None:
            raise TypeError(f"{self.kind} ops have no opsets: register {names[0]!r} without since=")
        since = self.first if since is None else since
        if self.first is not None and since < self.first:
            raise ValueError(f"{self.kind} opsets start at {self.first}, not {since} ({names[0]!r})")

        def decorate(kernel: K) -> K:
            for name in names:
                versions = self._kernels.setdefault(name, {})
                if since in versions:
                    at = f" for opset {since}" if since is not None else ""
                    raise ValueError(
                        f"{self.kind} op {name!r} is registered twice{at} ({versions[since]!r} and {kernel!r})"
                    )
                versions[since] = kernel
            self._resolved.clear()
            return kernel

        return decorate

    def get(self, name: str, where: str = "", opset: Any = None) -> K:
        """The kernel for `name` at `opset`; `where` names the layer/op for the error message."""
        try:
            return self._resolved[name, opset]
        except KeyError:
            kernel = self._resolved[name, opset] = self._resolve(name, where, opset)
            return kernel

    def _resolve(self, name: str, where: str, opset: Any) -> K:
        at = f" (in {where})" if where else ""
        if self.first is not None and opset is None:
            raise TypeError(f"{self.kind} kernels are registered per opset: get({name!r}) needs the opset.")
        versions = self._kernels.get(name)
        if not versions:
            in_opset = f" at opset {opset}" if opset is not None else ""
            raise UnsupportedOpError(
                f"The reference runtime has no kernel for the {self.kind} op {name!r}{at}{in_opset}. "
                f"Supported: {', '.join(self.available(opset))}."
            )
        if opset is None:
            return versions[None]
        usable = [since for since in versions if since <= opset]
        if not usable:
            raise UnsupportedOpError(
                f"The {self.kind} op {name!r}{at} is not available in opset {opset}, the opset its program "
                f"declares: Core ML defines it from opset {min(versions)} on."
            )
        return versions[max(usable)]

    def available(self, opset: Any = None) -> list[str]:
        """The names with a kernel at `opset` (every name for a format without opsets), sorted."""
        return sorted(name for name, versions in self._kernels.items()
                      if opset is None or any(since <= opset for since in versions))

    def opsets(self, name: str) -> list[Any]:
        """The opsets from which `name` has its own kernel, oldest first ([None] without opsets)."""
        return sorted(self._kernels.get(name, {}))

    def __contains__(self, name: object) -> bool:
        return name in self._kernels

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._kernels))

    def __len__(self) -> int:
        return len(self._kernels)
