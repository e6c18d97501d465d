"""Reductions: the old `reduce` layer (axis C/H/W modes), reduce*ND, argMax, argMin."""
from __future__ import annotations

from typing import Callable

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32, normalize_axis
from modelbuild.runtime.registry import UnsupportedOpError

Reducer = Callable[[np.ndarray, tuple[int, ...], float], np.ndarray]

_REDUCERS: dict[str, Reducer] = {
    "sum": lambda x, a, e: x.sum(axis=a, keepdims=True),
    "mean": lambda x, a, e: x.mean(axis=a, keepdims=True),
    "prod": lambda x, a, e: x.prod(axis=a, keepdims=True),
    "logSum": lambda x, a, e: np.log(x.sum(axis=a, keepdims=True)),
    "logSumPlusEps": lambda x, a, e: np.log(x + np.float32(e)).sum(axis=a, keepdims=True),
    "sumSquare": lambda x, a, e: (x * x).sum(axis=a, keepdims=True),
    "L1": lambda x, a, e: np.abs(x).sum(axis=a, keepdims=True),
    "L2": lambda x, a, e: np.sqrt((x * x).sum(axis=a, keepdims=True)),
    "max": lambda x, a, e: x.max(axis=a, keepdims=True),
    "min": lambda x, a, e: x.min(axis=a, keepdims=True),
    "logSumExp": lambda x, a, e: _logsumexp(x, a),
}


def _logsumexp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    peak = x.max(axis=axes, keepdims=True)
    return peak + np.log(np.exp(x - peak).sum(axis=axes, keepdims=True))


_OLD_MODES = {0: "sum", 1: "mean", 2: "prod", 3: "logSumPlusEps", 4: "sumSquare", 5: "L1", 6: "L2", 7: "max", 8: "min"}
_OLD_AXES = {0: (-3, -2, -1), 1: (-2, -1), 2: (-3,), 3: (-2,), 4: (-1,)}


@NN_LAYERS.register("reduce")
def reduce_old(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The old reduce layer: SUM, AVG, ... ARGMAX over CHW, HW, C, H or W; reduced axes kept as 1."""
    p = layer.params
    axes = _OLD_AXES[p.axis]
    layer.need_rank(x, -min(axes))
    x = f32(x)
    if p.mode == 9:
        if len(axes) != 1:
            raise layer.mismatch("ARGMAX axis", list(axes), "a single axis (C, H or W)")
        return f32(np.expand_dims(np.argmax(x, axis=axes[0]), axes[0]))
    if p.mode not in _OLD_MODES:
        raise UnsupportedOpError(f"{layer}: reduce mode {p.mode} is not supported; supported: 0..9.")
    with np.errstate(divide="ignore", invalid="ignore"):
        return f32(_REDUCERS[_OLD_MODES[p.mode]](x, axes, p.epsilon or 1e-6))


def _register_nd(name: str, reducer: str) -> None:
    def kernel(layer: Layer, x: np.ndarray) -> np.ndarray:
        p = layer.params
        x = f32(x)
        if p.reduceAll or not len(p.axes):
            axes = tuple(range(x.ndim))
        else:
            axes = tuple(sorted({normalize_axis(layer, int(a), x.ndim) for a in p.axes}))
        with np.errstate(divide="ignore", invalid="ignore"):
            y = _REDUCERS[reducer](x, axes, 0.0)
        if not p.keepDims:
            y = np.squeeze(y, axis=axes)
            if y.ndim == 0:
                y = y.reshape(1)
        return f32(y)

    kernel.__name__ = name
    kernel.__doc__ = f"The `{name}` layer: reduce `axes` (or all), keeping them if keepDims."
    NN_LAYERS.register(name)(kernel)


for _name, _reducer in {
    "reduceSum": "sum", "reduceMean": "mean", "reduceProd": "prod", "reduceLogSum": "logSum",
    "reduceSumSquare": "sumSquare", "reduceL1": "L1", "reduceL2": "L2", "reduceMax": "max",
    "reduceMin": "min", "reduceLogSumExp": "logSumExp",
}.items():
    _register_nd(_name, _reducer)


def _arg(layer: Layer, x: np.ndarray, fn: Callable[..., np.ndarray]) -> np.ndarray:
    axis = normalize_axis(layer, int(layer.params.axis), x.ndim)
    y = fn(x, axis=axis)
    if not layer.params.removeDim or x.ndim == 1:
        y = np.expand_dims(y, axis) if x.ndim > 1 or not layer.params.removeDim else y.reshape(1)
    return f32(y.reshape(1) if y.ndim == 0 else y)


@NN_LAYERS.register("argMax")
def arg_max(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Index of the maximum along `axis` (kept as 1 unless removeDim)."""
    return _arg(layer, x, np.argmax)


@NN_LAYERS.register("argMin")
def arg_min(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Index of the minimum along `axis` (kept as 1 unless removeDim)."""
    return _arg(layer, x, np.argmin)
