"""Layers that create blobs: constants, fills, shapes, ranges, broadcasts."""
from __future__ import annotations

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32


@NN_LAYERS.register("loadConstant")
def load_constant(layer: Layer) -> np.ndarray:
    """The constant [C, H, W] as a rank-5 blob [1, 1, C, H, W]."""
    shape = tuple(int(d) for d in layer.params.shape)
    if len(shape) != 3:
        raise layer.mismatch("shape length", len(shape), "3 ([C, H, W])")
    return layer.weights("data", shape).reshape((1, 1) + shape)


@NN_LAYERS.register("loadConstantND")
def load_constant_nd(layer: Layer) -> np.ndarray:
    """The constant with the declared shape."""
    return layer.weights("data", tuple(int(d) for d in layer.params.shape))


def _shape_of(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(d) for d in np.asarray(values).reshape(-1))


@NN_LAYERS.register("fillLike")
def fill_like(layer: Layer, x: np.ndarray) -> np.ndarray:
    """A blob shaped like the input, filled with `value`."""
    return np.full(np.shape(x), layer.params.value, dtype=np.float32)


@NN_LAYERS.register("fillStatic")
def fill_static(layer: Layer) -> np.ndarray:
    """A blob of `targetShape` filled with `value`."""
    return np.full(tuple(int(d) for d in layer.params.targetShape), layer.params.value, dtype=np.float32)


@NN_LAYERS.register("fillDynamic")
def fill_dynamic(layer: Layer, shape: np.ndarray) -> np.ndarray:
    """A blob whose shape is the input's values, filled with `value`."""
    return np.full(_shape_of(shape), layer.params.value, dtype=np.float32)


@NN_LAYERS.register("getShape")
def get_shape(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The input's shape as a rank-1 float blob."""
    return np.asarray(np.shape(x), dtype=np.float32)


@NN_LAYERS.register("rangeStatic")
def range_static(layer: Layer) -> np.ndarray:
    """np.arange(startValue, endValue, stepSizeValue)."""
    p = layer.params
    return f32(np.arange(p.startValue, p.endValue, p.stepSizeValue or 1.0))


@NN_LAYERS.register("rangeDynamic")
def range_dynamic(layer: Layer, end: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """np.arange(start, end, step) with end (and start, step) from inputs."""
    p = layer.params
    start = float(np.asarray(rest[0]).reshape(-1)[0]) if rest else p.startValue
    step = float(np.asarray(rest[1]).reshape(-1)[0]) if len(rest) > 1 else (p.stepSizeValue or 1.0)
    return f32(np.arange(start, float(np.asarray(end).reshape(-1)[0]), step))


def _broadcast_to(layer: Layer, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), shape)).copy()
    except ValueError:
        raise layer.mismatch("input shape broadcast to the target", list(np.shape(x)), f"broadcastable to {list(shape)}") from None


@NN_LAYERS.register("broadcastToLike")
def broadcast_to_like(layer: Layer, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Broadcast to the second input's shape."""
    return _broadcast_to(layer, x, np.shape(reference))


@NN_LAYERS.register("broadcastToStatic")
def broadcast_to_static(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Broadcast to `targetShape`."""
    return _broadcast_to(layer, x, tuple(int(d) for d in layer.params.targetShape))


@NN_LAYERS.register("broadcastToDynamic")
def broadcast_to_dynamic(layer: Layer, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Broadcast to the shape held in the second input."""
    return _broadcast_to(layer, x, _shape_of(shape))
