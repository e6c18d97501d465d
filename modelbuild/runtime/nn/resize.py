"""Spatial resizing: `upsample` (nearest / bilinear) and `resizeBilinear`.

Bilinear sampling follows NeuralNetwork.proto's SamplingMode: each mode gives
the source coordinate of every output row/column (a numpy linspace), and the
value is interpolated between the two neighbouring source pixels.
"""
from __future__ import annotations

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32

STRICT_ALIGN_ENDPOINTS, ALIGN_ENDPOINTS, UPSAMPLE_MODE, ROI_ALIGN_MODE = 0, 1, 2, 3


def sample_points(size: int, out: int, mode: int) -> np.ndarray:
    """Source coordinates of `out` samples of an axis of `size` pixels (SamplingMode.Method)."""
    if mode == STRICT_ALIGN_ENDPOINTS:
        return np.linspace(0, size - 1, out)
    if mode == ALIGN_ENDPOINTS:
        return np.full(out, (size - 1) / 2) if out == 1 else np.linspace(0, size - 1, out)
    if mode == UPSAMPLE_MODE:
        return np.minimum(size - 1, np.linspace(0, size - size / out, out))
    spacing = max(1, size - 1) / out
    start = 0.5 * spacing
    return np.minimum(size - 1, np.linspace(start, start + (out - 1) * spacing, out))


def _interpolate_axis(x: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    size = x.shape[axis]
    coords = np.clip(coords, 0, size - 1)
    low = np.floor(coords).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    frac = (coords - low).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    a = np.take(x, low, axis=axis)
    b = np.take(x, high, axis=axis)
    return a + (b - a) * frac.reshape(shape)


def bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Separable bilinear interpolation of [..., H, W] at the given source rows and columns."""
    return f32(_interpolate_axis(_interpolate_axis(f32(x), rows, -2), cols, -1))


@NN_LAYERS.register("upsample")
def upsample(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Scale H, W by integer (nearest/bilinear) or fractional (bilinear) factors."""
    p = layer.params
    layer.need_rank(x, 3)
    h, w = x.shape[-2:]
    fractional = [float(f) for f in p.fractionalScalingFactor]
    factors = fractional or [float(f) for f in p.scalingFactor] or [1.0, 1.0]
    out_h, out_w = int(np.floor(h * factors[0])), int(np.floor(w * factors[1]))
    if p.mode == 0:
        if fractional:
            raise layer.mismatch("fractionalScalingFactor with nearest-neighbour mode", fractional, "integer scalingFactor")
        return np.repeat(np.repeat(x, int(factors[0]), axis=-2), int(factors[1]), axis=-1)
    linear_mode = p.linearUpsampleMode
    if linear_mode == 1:  # ALIGN_CORNERS_TRUE
        rows, cols = np.linspace(0, h - 1, out_h), np.linspace(0, w - 1, out_w)
    elif linear_mode == 2:  # ALIGN_CORNERS_FALSE: half-pixel centres
        rows = np.maximum(0, (np.arange(out_h) + 0.5) * (h / out_h) - 0.5)
        cols = np.maximum(0, (np.arange(out_w) + 0.5) * (w / out_w) - 0.5)
    else:
        rows, cols = sample_points(h, out_h, UPSAMPLE_MODE), sample_points(w, out_w, UPSAMPLE_MODE)
    return bilinear(x, rows, cols)


@NN_LAYERS.register("resizeBilinear")
def resize_bilinear(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Resize H, W to targetSize with the SamplingMode grid."""
    p = layer.params
    layer.need_rank(x, 3)
    h, w = x.shape[-2:]
    target = [int(t) for t in p.targetSize] or [1, 1]
    mode = p.mode.samplingMethod
    return bilinear(x, sample_points(h, target[0], mode), sample_points(w, target[1], mode))
