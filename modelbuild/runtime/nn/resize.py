"""Spatial resizing: `upsample` (nearest / bilinear), `resizeBilinear` and `cropResize`.

Bilinear sampling follows NeuralNetwork.proto's SamplingMode: each mode gives
the source coordinate of every output row/column (a numpy linspace), and the
value is interpolated between the two neighbouring source pixels. A resize
samples the span [0, X - 1] of an axis, a crop the span [start, end] of its box.
"""
from __future__ import annotations

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32

STRICT_ALIGN_ENDPOINTS, ALIGN_ENDPOINTS, UPSAMPLE_MODE, ROI_ALIGN_MODE = 0, 1, 2, 3


def span_points(start: float, end: float, out: int, mode: int) -> np.ndarray:
    """Source coordinates of `out` samples of the span [start, end] (SamplingMode.Method, whose
    X - 1 is the span's length end - start)."""
    extent = end - start
    if mode == STRICT_ALIGN_ENDPOINTS:
        offsets = np.linspace(0, extent, out)
    elif mode == ALIGN_ENDPOINTS:
        offsets = np.full(out, extent / 2) if out == 1 else np.linspace(0, extent, out)
    elif mode == UPSAMPLE_MODE:
        offsets = np.minimum(extent, np.linspace(0, (extent + 1) * (1 - 1 / out), out))
    else:
        spacing = max(1, extent) / out
        offsets = np.minimum(extent, np.linspace(0.5 * spacing, (out - 0.5) * spacing, out))
    return start + offsets


def sample_points(size: int, out: int, mode: int) -> np.ndarray:
    """Source coordinates of `out` samples of an axis of `size` pixels (SamplingMode.Method)."""
    return span_points(0, size - 1, out, mode)


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


CORNERS_HEIGHT_FIRST, CORNERS_WIDTH_FIRST, CENTER_SIZE_HEIGHT_FIRST, CENTER_SIZE_WIDTH_FIRST = 0, 1, 2, 3


def _box_spans(layer: Layer, box: np.ndarray) -> tuple[float, float, float, float]:
    """(h_start, h_end, w_start, w_end) of one box in its BoxCoordinatesMode."""
    a, b, c, d = (float(v) for v in box)
    mode = layer.params.boxIndicesMode.boxMode
    if mode == CORNERS_HEIGHT_FIRST:
        return a, c, b, d
    if mode == CORNERS_WIDTH_FIRST:
        return b, d, a, c
    if mode == CENTER_SIZE_HEIGHT_FIRST:
        return a - c / 2, a + c / 2, b - d / 2, b + d / 2
    if mode == CENTER_SIZE_WIDTH_FIRST:
        return b - d / 2, b + d / 2, a - c / 2, a + c / 2
    raise layer.mismatch("boxIndicesMode.boxMode", mode, "0-3 (CORNERS_HEIGHT_FIRST ... CENTER_SIZE_WIDTH_FIRST)")


@NN_LAYERS.register("cropResize")
def crop_resize(layer: Layer, x: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Crop the boxes of roi [N, 1, 4|5, 1, 1] out of x [1, B, C, H, W] and resize them to targetSize.

    Four coordinates crop every image ([N, B, C, H_out, W_out]); five name the image first
    ([N, 1, C, H_out, W_out]). Coordinates are multiplied by spatialScale (unset: 1), then, if
    normalizedCoordinates, by (H - 1) and (W - 1); samples outside the image take the edge pixel.
    """
    p = layer.params
    layer.need_rank(x, 3)
    images = f32(x).reshape((-1,) + x.shape[-3:])
    height, width = images.shape[-2:]
    boxes = np.asarray(roi, dtype=np.float64).reshape(np.shape(roi)[0] if np.ndim(roi) else 1, -1)
    if boxes.shape[1] not in (4, 5):
        raise layer.mismatch("RoI shape", list(np.shape(roi)), "[N, 1, 4, 1, 1] or [N, 1, 5, 1, 1]")
    target_h, target_w = [int(t) for t in p.targetSize] or [1, 1]
    scale = float(p.spatialScale) or 1.0
    crops = []
    for box in boxes:
        chosen = range(len(images)) if boxes.shape[1] == 4 else [int(box[0])]
        if boxes.shape[1] == 5 and not 0 <= chosen[0] < len(images):
            raise layer.mismatch("RoI batch index", chosen[0], f"an index in [0, {len(images) - 1}]")
        h0, h1, w0, w1 = (v * scale for v in _box_spans(layer, box[-4:]))
        if p.normalizedCoordinates:
            h0, h1, w0, w1 = h0 * (height - 1), h1 * (height - 1), w0 * (width - 1), w1 * (width - 1)
        rows = span_points(h0, h1, target_h, p.mode.samplingMethod)
        cols = span_points(w0, w1, target_w, p.mode.samplingMethod)
        crops.append(np.stack([bilinear(images[b], rows, cols) for b in chosen]))
    return f32(np.stack(crops))
