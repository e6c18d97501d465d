"""MIL normalisation ops (coremltools `ops/defs/iOS15/normalization.py`), computed in fp32."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..kernel import MIL_OPS, OpContext
from ._torch import to_numpy, to_torch


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _channel_param(op: OpContext, x: np.ndarray, value: Any, name: str, default: float) -> np.ndarray:
    """A per-channel (axis 1) parameter broadcast against x."""
    if value is None:
        return np.float32(default)
    value = _f32(value)
    if value.size != x.shape[1]:
        raise op.shape_error(f"{name} must have {x.shape[1]} values, one per channel", x=x, **{name: value})
    return value.reshape((1, -1) + (1,) * (x.ndim - 2))


@MIL_OPS.register("batch_norm")
def batch_norm(
    op: OpContext, *, x: np.ndarray, mean: np.ndarray, variance: np.ndarray, gamma: Any = None,
    beta: Any = None, epsilon: Any = 1e-5,
) -> np.ndarray:
    if x.ndim < 3 or x.ndim > 5:
        raise op.shape_error("x must have rank 3 to 5 (N, C, *spatial)", x=x)
    x32 = _f32(x)
    scale = _channel_param(op, x, gamma, "gamma", 1.0) / np.sqrt(
        _channel_param(op, x, variance, "variance", 1.0) + np.float32(epsilon)
    )
    return (x32 - _channel_param(op, x, mean, "mean", 0.0)) * scale + _channel_param(op, x, beta, "beta", 0.0)


@MIL_OPS.register("instance_norm")
def instance_norm(
    op: OpContext, *, x: np.ndarray, gamma: Any = None, beta: Any = None, epsilon: Any = 1e-5
) -> np.ndarray:
    if x.ndim < 3:
        raise op.shape_error("x must have rank 3 or more (N, C, *spatial)", x=x)
    x32 = _f32(x)
    axes = tuple(range(2, x.ndim))
    centred = x32 - x32.mean(axis=axes, keepdims=True)
    normalised = centred / np.sqrt((centred**2).mean(axis=axes, keepdims=True) + np.float32(epsilon))
    return normalised * _channel_param(op, x, gamma, "gamma", 1.0) + _channel_param(op, x, beta, "beta", 0.0)


@MIL_OPS.register("layer_norm")
def layer_norm(
    op: OpContext, *, x: np.ndarray, axes: Any = None, gamma: Any = None, beta: Any = None,
    epsilon: Any = 1e-5,
) -> np.ndarray:
    x32 = _f32(x)
    rank = x.ndim
    axes_ = sorted({int(a) % rank for a in np.asarray(axes).reshape(-1)}) if axes is not None else list(range(rank))
    normalized_shape = tuple(x.shape[a] for a in axes_)
    broadcast = tuple(x.shape[i] if i in axes_ else 1 for i in range(rank))

    def param(value: Any, name: str, default: float) -> Any:
        if value is None:
            return np.float32(default)
        value = _f32(value)
        if value.size != int(np.prod(normalized_shape)):
            raise op.shape_error(f"{name} must have the shape {normalized_shape} of x's normalised axes",
                                 x=x, **{name: value})
        return value.reshape(broadcast)

    centred = x32 - x32.mean(axis=tuple(axes_), keepdims=True)
    normalised = centred / np.sqrt((centred**2).mean(axis=tuple(axes_), keepdims=True) + np.float32(epsilon))
    return normalised * param(gamma, "gamma", 1.0) + param(beta, "beta", 0.0)


@MIL_OPS.register("l2_norm")
def l2_norm(op: OpContext, *, x: np.ndarray, epsilon: Any = 1e-6) -> np.ndarray:
    """Divide by the L2 norm of the last three dims (all leading dims are batch)."""
    if x.ndim < 3:
        raise op.shape_error("x must have rank 3 or more", x=x)
    x32 = _f32(x)
    squares = (x32**2).sum(axis=(-3, -2, -1), keepdims=True)
    return x32 / np.sqrt(squares + np.float32(epsilon))


@MIL_OPS.register("local_response_norm")
def local_response_norm(
    op: OpContext, *, x: np.ndarray, size: Any, alpha: Any = 1e-4, beta: Any = 0.75, k: Any = 1.0
) -> np.ndarray:
    with torch.no_grad():
        return to_numpy(F.local_response_norm(to_torch(x), int(size), float(alpha), float(beta), float(k)))
