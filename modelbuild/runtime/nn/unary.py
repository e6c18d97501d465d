"""Elementwise layers with one input: `unary`, `clip`, clampedReLU, rounding, trigonometry, erf, gelu."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32
from modelbuild.runtime.registry import UnsupportedOpError

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def erf(x: np.ndarray) -> np.ndarray:
    """The Gauss error function (float64 accuracy), elementwise."""
    try:
        import torch

        return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        return f32(_ERF(x))


@NN_LAYERS.register("unary")
def unary(layer: Layer, x: np.ndarray) -> np.ndarray:
    """f(scale * x + shift) for UnaryFunctionLayerParams.Operation."""
    p = layer.params
    scale = np.float32(p.scale or 1.0)
    eps = np.float32(p.epsilon or 1e-6)
    alpha = np.float32(p.alpha)
    x = f32(x) * scale + np.float32(p.shift)
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        0: np.sqrt,
        1: lambda v: 1 / np.sqrt(v + eps),
        2: lambda v: 1 / (v + eps),
        3: lambda v: np.power(v, alpha),
        4: np.exp,
        5: lambda v: np.log(v + eps),  # coremltools writes log's epsilon here (1e-45 if none) and tests log(x + epsilon)
        6: np.abs,
        7: lambda v: np.maximum(v, alpha),
    }
    if p.type not in ops:
        raise UnsupportedOpError(f"{layer}: unary operation {p.type} is not supported; supported: 0..7.")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return f32(ops[p.type](x))


@NN_LAYERS.register("clip")
def clip(layer: Layer, x: np.ndarray) -> np.ndarray:
    """min(max(x, minVal), maxVal)."""
    return f32(np.minimum(np.maximum(f32(x), np.float32(layer.params.minVal)), np.float32(layer.params.maxVal)))


_SIMPLE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ceil": np.ceil,
    "floor": np.floor,
    "sign": np.sign,
    "round": np.round,  # half to even, like Core ML's CPU (rint)
    "exp2": np.exp2,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "erf": erf,
}


def _register_simple(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    def kernel(layer: Layer, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return f32(fn(f32(x)))

    kernel.__name__ = name
    kernel.__doc__ = f"The `{name}` layer, elementwise."
    NN_LAYERS.register(name)(kernel)


for _name, _fn in _SIMPLE.items():
    _register_simple(_name, _fn)


@NN_LAYERS.register("clampedReLU")
def clamped_relu(layer: Layer, x: np.ndarray) -> np.ndarray:
    """min(x if x >= 0 else alpha * x, beta)."""
    x = f32(x)
    return f32(np.minimum(np.where(x >= 0, x, np.float32(layer.params.alpha) * x), np.float32(layer.params.beta)))


@NN_LAYERS.register("gelu")
def gelu(layer: Layer, x: np.ndarray) -> np.ndarray:
    """GELU: EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION."""
    x = f32(x)
    mode = layer.params.mode
    if mode == 1:
        inner = np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x**3)
        return f32(0.5 * x * (1 + np.tanh(inner)))
    if mode == 2:
        return f32(x / (1 + np.exp(np.float32(-1.702) * x)))
    return f32(0.5 * x * (1 + erf(x / np.float32(math.sqrt(2)))))
