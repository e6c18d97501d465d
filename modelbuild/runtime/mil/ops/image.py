"""MIL resampling of the last two (spatial) dims: nearest neighbour and bilinear.

Grid points follow coremltools' `ops/defs/iOS15/image_resizing.py` notes: for
an input size Xin and output size Xout, output i samples input coordinate
grid[i] (clamped to [0, Xin - 1]), with the sampling modes
STRICT_ALIGN_CORNERS, ALIGN_CORNERS, DEFAULT, OFFSET_CORNERS, UNALIGN_CORNERS.
Bilinear interpolation is separable: linear along H, then along W.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext

SAMPLING_MODES = ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS")


def sampling_grid(mode: str, size_in: int, size_out: int) -> np.ndarray:
    """Input coordinates sampled by each output position along one axis."""
    i = np.arange(size_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size_out == 1:
            grid = np.full(1, (size_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            grid = i * (size_in - 1) / (size_out - 1)
    elif mode == "DEFAULT":
        grid = i * size_in / size_out
    elif mode == "OFFSET_CORNERS":
        delta = max(1, size_in - 1) / size_out
        grid = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        spacing = size_in / size_out
        grid = i * spacing + 0.5 * spacing - 0.5
    else:
        raise ValueError(f"sampling mode {mode!r} is not one of {', '.join(SAMPLING_MODES)}")
    return np.clip(grid, 0, size_in - 1)


def _lerp_axis(x: np.ndarray, grid: np.ndarray, axis: int) -> np.ndarray:
    low = np.floor(grid).astype(np.int64)
    high = np.minimum(low + 1, x.shape[axis] - 1)
    weight_shape = [1] * x.ndim
    weight_shape[axis] = -1
    frac = (grid - low).reshape(weight_shape)
    return np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac


def _bilinear(op: OpContext, x: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    if x.ndim < 3:
        raise op.shape_error("x must have rank 3 or more (*, H, W)", x=x)
    if mode not in SAMPLING_MODES:
        raise op.value_error(f"sampling mode {mode!r} is not one of {', '.join(SAMPLING_MODES)}")
    data = x.astype(np.float32)
    data = _lerp_axis(data, sampling_grid(mode, x.shape[-2], height), -2)
    return _lerp_axis(data, sampling_grid(mode, x.shape[-1], width), -1)


def _nearest(op: OpContext, x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if x.ndim < 3:
        raise op.shape_error("x must have rank 3 or more (*, H, W)", x=x)
    rows = np.minimum(rows, x.shape[-2] - 1)
    cols = np.minimum(cols, x.shape[-1] - 1)
    return np.take(np.take(x, rows, axis=-2), cols, axis=-1)


@MIL_OPS.register("upsample_nearest_neighbor")
def upsample_nearest_neighbor(
    op: OpContext, *, x: np.ndarray, scale_factor_height: Any = 1, scale_factor_width: Any = 1
) -> np.ndarray:
    """Output (i, j) takes input (floor(i / scale_h), floor(j / scale_w))."""
    sh, sw = float(scale_factor_height), float(scale_factor_width)
    height, width = math.floor(x.shape[-2] * sh), math.floor(x.shape[-1] * sw)
    return _nearest(op, x, np.floor(np.arange(height) / sh).astype(np.int64),
                    np.floor(np.arange(width) / sw).astype(np.int64))


@MIL_OPS.register("resize_nearest_neighbor")
def resize_nearest_neighbor(
    op: OpContext, *, x: np.ndarray, target_size_height: Any, target_size_width: Any
) -> np.ndarray:
    """Output (i, j) takes input (floor(i * H_in / H_out), floor(j * W_in / W_out))."""
    height, width = int(target_size_height), int(target_size_width)
    return _nearest(op, x, np.arange(height) * x.shape[-2] // height, np.arange(width) * x.shape[-1] // width)


@MIL_OPS.register("upsample_bilinear")
def upsample_bilinear(
    op: OpContext, *, x: np.ndarray, scale_factor_height: Any = 1, scale_factor_width: Any = 1,
    align_corners: Any = True, half_pixel_centers: Any = None,
) -> np.ndarray:
    """align_corners: STRICT_ALIGN_CORNERS grid; else half-pixel centres (UNALIGN) unless disabled (DEFAULT)."""
    align = bool(align_corners)
    half_pixel = (not align) if half_pixel_centers is None else bool(half_pixel_centers)
    if align and half_pixel:
        raise op.value_error("align_corners and half_pixel_centers cannot both be true")
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half_pixel else "DEFAULT")
    height = math.floor(x.shape[-2] * float(scale_factor_height))
    width = math.floor(x.shape[-1] * float(scale_factor_width))
    return _bilinear(op, x, height, width, mode)


@MIL_OPS.register("resize_bilinear")
def resize_bilinear(
    op: OpContext, *, x: np.ndarray, target_size_height: Any = 1, target_size_width: Any = 1,
    sampling_mode: str = "DEFAULT",
) -> np.ndarray:
    return _bilinear(op, x, int(target_size_height), int(target_size_width), str(sampling_mode))
