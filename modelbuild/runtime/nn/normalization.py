"""Normalisation and per-channel affine layers.

batchnorm, instance/mean-variance normalisation (mvn), l2normalize, lrn,
layerNormalization, softmax (axis -3), softmaxND, scale and bias. Old layers
read the last three axes as [C, H, W]; leading axes are batch.
"""
from __future__ import annotations

import numpy as np
import torch

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32, normalize_axis


def _channel_vector(layer: Layer, field: str, channels: int) -> np.ndarray:
    return layer.weights(field, (channels,)).reshape(-1, 1, 1)


@NN_LAYERS.register("batchnorm")
def batchnorm(layer: Layer, x: np.ndarray) -> np.ndarray:
    """gamma * (x - mean) / sqrt(var + eps) + beta along axis -3."""
    p = layer.params
    layer.need_rank(x, 3)
    x = f32(x)
    channels = int(p.channels)
    if x.shape[-3] != channels:
        raise layer.mismatch(f"channels (axis -3 of {list(x.shape)})", x.shape[-3], f"channels = {channels}")
    eps = np.float32(p.epsilon or 1e-5)
    gamma = _channel_vector(layer, "gamma", channels)
    beta = _channel_vector(layer, "beta", channels)
    if p.computeMeanVar:
        if p.instanceNormalization:
            axes: tuple[int, ...] = (-2, -1)
        else:
            axes = tuple(i for i in range(x.ndim) if i != x.ndim - 3)
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
    else:
        mean = _channel_vector(layer, "mean", channels)
        var = _channel_vector(layer, "variance", channels)
    scale = gamma / np.sqrt(var + eps)
    return f32(x * scale + (beta - mean * scale))


@NN_LAYERS.register("mvn")
def mvn(layer: Layer, x: np.ndarray) -> np.ndarray:
    """(x - mean) [/ sqrt(var + eps)] over H, W, or over C, H, W if acrossChannels."""
    p = layer.params
    layer.need_rank(x, 3)
    x = f32(x)
    axes = (-3, -2, -1) if p.acrossChannels else (-2, -1)
    centred = x - x.mean(axis=axes, keepdims=True)
    if not p.normalizeVariance:
        return centred
    eps = np.float32(p.epsilon or 1e-6)
    return f32(centred / np.sqrt((centred**2).mean(axis=axes, keepdims=True) + eps))


@NN_LAYERS.register("l2normalize")
def l2normalize(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x / sqrt(sum over C, H, W of x^2 + eps)."""
    layer.need_rank(x, 3)
    x = f32(x)
    eps = np.float32(layer.params.epsilon or 1e-6)
    return f32(x / np.sqrt((x**2).sum(axis=(-3, -2, -1), keepdims=True) + eps))


@NN_LAYERS.register("lrn")
def lrn(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x / (k + alpha / n * sum of x^2 over n neighbouring channels)^beta."""
    p = layer.params
    layer.need_rank(x, 3)
    x = f32(x)
    shape = x.shape
    batched = torch.from_numpy(np.ascontiguousarray(x.reshape((-1,) + shape[-3:])))
    with torch.no_grad():
        y = torch.nn.functional.local_response_norm(batched, int(p.localSize), p.alpha, p.beta, p.k or 1.0)
    return y.numpy().reshape(shape)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return f32(e / e.sum(axis=axis, keepdims=True))


@NN_LAYERS.register("softmax")
def softmax(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Softmax along axis -3 (channels)."""
    layer.need_rank(x, 3)
    return _softmax(f32(x), -3)


@NN_LAYERS.register("softmaxND")
def softmax_nd(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Softmax along `axis`."""
    return _softmax(f32(x), normalize_axis(layer, int(layer.params.axis), np.ndim(x)))


@NN_LAYERS.register("layerNormalization")
def layer_normalization(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Normalise over the trailing `normalizedShape` axes, then gamma * y + beta."""
    p = layer.params
    shape = tuple(int(d) for d in p.normalizedShape)
    x = f32(x)
    if x.shape[x.ndim - len(shape):] != shape:
        raise layer.mismatch("trailing input dimensions", list(x.shape), f"ending in {list(shape)}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    y = centred / np.sqrt((centred**2).mean(axis=axes, keepdims=True) + np.float32(p.eps))
    return f32(y * layer.weights("gamma", shape) + layer.weights("beta", shape))


def _affine_param(layer: Layer, x: np.ndarray, field: str, shape_field: str) -> np.ndarray:
    shape = tuple(int(d) for d in getattr(layer.params, shape_field)) or (1,)
    values = layer.weights(field, shape)
    c, h, w = x.shape[-3:]
    allowed = {(1,), (c,), (1, h, w), (c, h, w)}
    if shape not in allowed:
        raise layer.mismatch(f"{shape_field} vs input [C, H, W] = {[c, h, w]}", list(shape), "[1], [C], [1, H, W] or [C, H, W]")
    return values.reshape(-1, 1, 1) if len(shape) == 1 else values


@NN_LAYERS.register("scale")
def scale(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x * scale (+ bias), both broadcast over [C, H, W]."""
    layer.need_rank(x, 3)
    x = f32(x)
    y = x * _affine_param(layer, x, "scale", "shapeScale")
    if layer.params.hasBias:
        y = y + _affine_param(layer, x, "bias", "shapeBias")
    return f32(y)


@NN_LAYERS.register("bias")
def bias(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x + bias broadcast over [C, H, W]."""
    layer.need_rank(x, 3)
    x = f32(x)
    return f32(x + _affine_param(layer, x, "bias", "shape"))
