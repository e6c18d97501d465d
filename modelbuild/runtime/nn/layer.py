"""The view of one NeuralNetwork layer that kernels receive, and shape helpers.

A kernel is `kernel(layer: Layer, *inputs: np.ndarray) -> np.ndarray | tuple`.
`Layer.params` is the layer's parameter message (e.g. ConvolutionLayerParams),
`Layer.weights(...)` decodes and caches a WeightParams field, and
`Layer.mismatch(...)` raises the ShapeMismatchError naming the layer.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from modelbuild.runtime.nn.weights import decode_weights
from modelbuild.runtime.registry import OpRegistry, ShapeMismatchError

Kernel = Callable[..., Any]
NN_LAYERS: OpRegistry[Kernel] = OpRegistry("NeuralNetwork")


class Layer:
    """One layer of a NeuralNetwork spec: name, type, parameters and a weight cache."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.name: str = spec.name
        self.kind: str = spec.WhichOneof("layer") or "undefined"
        self.params: Any = getattr(spec, self.kind) if self.kind != "undefined" else None
        self.inputs: list[str] = list(spec.input)
        self.outputs: list[str] = list(spec.output)
        self._cache: dict[str, Any] = {}
        self._owners: dict[int, Any] = {}  # keeps weight-owning messages alive, so their ids stay theirs

    def __repr__(self) -> str:
        return f"{self.kind} layer {self.name!r}"

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """`build()` once per layer (weights, prepared tensors), then the cached value."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def weights(
        self,
        field: str,
        shape: tuple[int, ...] | None = None,
        *,
        params: Any = None,
        channel_axis_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The WeightParams `field` of the params (or of `params`), decoded, reshaped, cached."""
        owner = self.params if params is None else params
        # protobuf hands out a new wrapper object for a sub-message once the last one is gone, and
        # CPython may give it the freed one's id: holding the owner keeps the cache key unique
        owner = self._owners.setdefault(id(owner), owner)

        def build() -> np.ndarray:
            count = int(np.prod(shape)) if shape is not None else None
            values = decode_weights(
                getattr(owner, field), count, where=f"{self}: {field}",
                channel_axis_shape=channel_axis_shape,
            )
            return values.reshape(shape) if shape is not None else values

        return self.cached(f"{id(owner)}:{field}:{shape}", build)

    def mismatch(self, what: str, got: Any, expected: Any) -> ShapeMismatchError:
        """A ShapeMismatchError naming this layer, for `raise layer.mismatch(...)`."""
        return ShapeMismatchError(f"{self}: {what}: got {got}, expected {expected}.")

    def need_rank(self, x: np.ndarray, minimum: int, what: str = "input") -> None:
        if x.ndim < minimum:
            raise self.mismatch(f"{what} rank", f"shape {list(x.shape)}", f"rank >= {minimum}")


def as_batched_chw(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """View an old-style blob [..., C, H, W] as [N, C, H, W]; returns the view and the batch dims."""
    if x.ndim < 3:
        x = x.reshape((1,) * (3 - x.ndim) + x.shape)
    batch = x.shape[:-3]
    return x.reshape((-1,) + x.shape[-3:]), batch


def from_batched_chw(y: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """Inverse of `as_batched_chw` for an output [N, C', H', W']."""
    return y.reshape(batch + y.shape[1:])


def broadcast_shapes(layer: Layer, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy broadcasting of `shapes`, or a ShapeMismatchError naming the layer and the shapes."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise layer.mismatch(
            "inputs are not broadcastable", " and ".join(str(list(s)) for s in shapes),
            "shapes that are equal or 1 in every trailing dimension",
        ) from None


def normalize_axis(layer: Layer, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise layer.mismatch("axis out of range", f"axis {axis} for rank {rank}", f"-{rank} <= axis < {rank}")
    return axis % rank


def f32(x: Any) -> np.ndarray:
    """A float32 array (every NeuralNetwork blob is float32 on Core ML's CPU path)."""
    return np.asarray(x, dtype=np.float32)
