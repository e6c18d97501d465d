"""MIL activation ops (coremltools `ops/defs/iOS15/activation.py`).

Activations with per-channel parameters (prelu, softplus_parametric) apply
them along axis 1 of a rank 3..5 input (B, C, ...).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..kernel import MIL_OPS, OpContext
from ._torch import half_tensors


def _f32(x: Any) -> np.ndarray:
    """Float inputs as float32 (fp16 programs compute activations in fp32, then round)."""
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def per_channel(op: OpContext, x: np.ndarray, param: Any, name: str) -> np.ndarray:
    """`param` of shape [C] broadcastable against x of shape (B, C, ...)."""
    param = np.asarray(param)
    if x.ndim < 2 or param.ndim != 1 or param.shape[0] not in (1, x.shape[1]):
        raise op.shape_error(f"{name} must have one value per channel (axis 1 of x)", x=x, **{name: param})
    return param.reshape((1, -1) + (1,) * (x.ndim - 2))


@MIL_OPS.register("relu")
def relu(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    half = half_tensors(x)  # the same values, faster than numpy's float16 maximum
    return torch.relu(half[0]).numpy() if half is not None else np.maximum(x, 0)


@MIL_OPS.register("relu6")
def relu6(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0), 6)


@MIL_OPS.register("leaky_relu")
def leaky_relu(op: OpContext, *, x: np.ndarray, alpha: Any = 0.01) -> np.ndarray:
    x = _f32(x)
    return np.where(x < 0, x * alpha, x)


@MIL_OPS.register("prelu")
def prelu(op: OpContext, *, x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    x = _f32(x)
    return np.maximum(x, 0) + np.minimum(x, 0) * per_channel(op, x, alpha, "alpha")


@MIL_OPS.register("elu")
def elu(op: OpContext, *, x: np.ndarray, alpha: Any = 1.0) -> np.ndarray:
    x = _f32(x)
    with np.errstate(over="ignore"):
        return np.where(x < 0, alpha * np.expm1(np.minimum(x, 0)), x)


@MIL_OPS.register("sigmoid")
def sigmoid(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


@MIL_OPS.register("sigmoid_hard")
def sigmoid_hard(op: OpContext, *, x: np.ndarray, alpha: Any = 0.2, beta: Any = 0.5) -> np.ndarray:
    return np.clip(alpha * _f32(x) + beta, 0, 1)


@MIL_OPS.register("silu")
def silu(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    return _f32(x) * sigmoid(op, x=x)


@MIL_OPS.register("softplus")
def softplus(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


@MIL_OPS.register("softplus_parametric")
def softplus_parametric(op: OpContext, *, x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    x = _f32(x)
    scaled = x * per_channel(op, x, beta, "beta")
    return per_channel(op, x, alpha, "alpha") * (np.log1p(np.exp(-np.abs(scaled))) + np.maximum(scaled, 0))


@MIL_OPS.register("softsign")
def softsign(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    x = _f32(x)
    return x / (1 + np.abs(x))


_GELU_MODES = ("EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION")


@MIL_OPS.register("gelu")
def gelu(op: OpContext, *, x: np.ndarray, mode: str = "EXACT") -> np.ndarray:
    x = _f32(x)
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    if mode == "EXACT":
        erf = torch.special.erf(torch.from_numpy(np.asarray(x / math.sqrt(2), np.float64))).numpy()
        return 0.5 * x * (1 + erf)
    raise op.value_error(f"unknown gelu mode {mode!r}; accepted: {', '.join(_GELU_MODES)}")


@MIL_OPS.register("clamped_relu")
def clamped_relu(op: OpContext, *, x: np.ndarray, alpha: Any, beta: Any) -> np.ndarray:
    x = _f32(x)
    return np.minimum(np.maximum(x, 0), beta) + np.minimum(np.minimum(x, 0) * alpha, beta)


@MIL_OPS.register("thresholded_relu")
def thresholded_relu(op: OpContext, *, x: np.ndarray, alpha: Any = 1.0) -> np.ndarray:
    return np.where(x < alpha, np.zeros_like(x), x)


@MIL_OPS.register("linear_activation")
def linear_activation(op: OpContext, *, x: np.ndarray, alpha: Any, beta: Any = 0.0) -> np.ndarray:
    return alpha * _f32(x) + beta


@MIL_OPS.register("scaled_tanh")
def scaled_tanh(op: OpContext, *, x: np.ndarray, alpha: Any = 1.0, beta: Any = 1.0) -> np.ndarray:
    return alpha * np.tanh(_f32(x) * beta)


@MIL_OPS.register("softmax")
def softmax(op: OpContext, *, x: np.ndarray, axis: Any = -1) -> np.ndarray:
    x = _f32(x)
    shifted = np.exp(x - np.max(x, axis=int(axis), keepdims=True))
    return shifted / np.sum(shifted, axis=int(axis), keepdims=True)
