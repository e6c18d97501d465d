"""MIL resample (sample an image at given coordinates) and affine (resample on a transformed grid).

Coordinates (x, y) become pixel positions u (0 .. size-1 inside the image):
unnormalized: u = c; normalized_minus_one_to_one: u = (c + 1) / 2 * (size - 1)
with align_corners, ((c + 1) * size - 1) / 2 without; normalized_zero_to_one:
c = 2c - 1 first. Padding: constant (outside samples are padding_value), border
(clamp), reflection (mirror about the first and last pixel centres: |1 2 3| ->
2 3 2 1 2 3 2 1), symmetric (mirror about the image edges, repeating the edge:
3 2 1 1 2 3 3 2 1). Nearest rounds half to even. Checked against the expected
values of coremltools' TestResample.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext

COORDINATE_MODES = ("unnormalized", "normalized_minus_one_to_one", "normalized_zero_to_one")
PADDING_MODES = ("constant", "border", "reflection", "symmetric")


def to_pixels(c: np.ndarray, size: int, mode: str, align_corners: bool) -> np.ndarray:
    if mode == "unnormalized":
        return c
    if mode == "normalized_zero_to_one":
        c = 2 * c - 1
    elif mode != "normalized_minus_one_to_one":
        raise ValueError(f"coordinates_mode {mode!r} is not one of {', '.join(COORDINATE_MODES)}")
    return (c + 1) / 2 * (size - 1) if align_corners else ((c + 1) * size - 1) / 2


def _reflect(u: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low
    if span <= 0:
        return np.full_like(u, low)
    folded = np.mod(u - low, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def fold_padding(u: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Pixel positions with border / reflection / symmetric padding resolved (constant: unchanged)."""
    if mode == "constant":
        return u
    if mode == "border":
        return np.clip(u, 0, size - 1)
    if mode == "reflection":
        return _reflect(u, 0.0, size - 1.0)
    if mode == "symmetric":
        return np.clip(_reflect(u, -0.5, size - 0.5), 0, size - 1)
    raise ValueError(f"padding_mode {mode!r} is not one of {', '.join(PADDING_MODES)}")


def _pick(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, pad: float) -> np.ndarray:
    """image[:, rows, cols] with pad where (rows, cols) lies outside: (C, *rows.shape)."""
    height, width = image.shape[-2:]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    values = image[:, np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)]
    return np.where(inside, values, np.float32(pad))


def sample(image: np.ndarray, u_y: np.ndarray, u_x: np.ndarray, mode: str, pad: float) -> np.ndarray:
    if mode == "nearest":
        return _pick(image, np.rint(u_y).astype(np.int64), np.rint(u_x).astype(np.int64), pad)
    if mode != "bilinear":
        raise ValueError(f"sampling_mode {mode!r} is not one of bilinear, nearest")
    y0, x0 = np.floor(u_y).astype(np.int64), np.floor(u_x).astype(np.int64)
    wy, wx = (u_y - y0).astype(np.float32), (u_x - x0).astype(np.float32)
    return (
        _pick(image, y0, x0, pad) * (1 - wy) * (1 - wx) + _pick(image, y0, x0 + 1, pad) * (1 - wy) * wx
        + _pick(image, y0 + 1, x0, pad) * wy * (1 - wx) + _pick(image, y0 + 1, x0 + 1, pad) * wy * wx
    )


def _resample(
    op: OpContext, x: np.ndarray, coordinates: np.ndarray, sampling_mode: str, padding_mode: str,
    padding_value: Any, coordinates_mode: str, align_corners: Any,
) -> np.ndarray:
    if x.ndim != 4 or coordinates.ndim != 4 or coordinates.shape[-1] != 2 or coordinates.shape[0] != x.shape[0]:
        raise op.shape_error("x must be (B, C, H, W) and coordinates (B, H2, W2, 2)", x=x, coordinates=coordinates)
    height, width = x.shape[-2:]
    try:
        align = bool(align_corners)
        u_x = fold_padding(to_pixels(coordinates[..., 0], width, coordinates_mode, align), width, padding_mode)
        u_y = fold_padding(to_pixels(coordinates[..., 1], height, coordinates_mode, align), height, padding_mode)
        pad = float(padding_value) if padding_mode == "constant" else 0.0
        image = x.astype(np.float32)
        return np.stack([sample(image[b], u_y[b], u_x[b], sampling_mode, pad) for b in range(x.shape[0])])
    except ValueError as error:
        raise op.value_error(str(error)) from None


@MIL_OPS.register("resample")
def resample(
    op: OpContext, *, x: np.ndarray, coordinates: np.ndarray, sampling_mode: str = "bilinear",
    padding_mode: str = "constant", padding_value: Any = 0.0, coordinates_mode: str = "normalized_minus_one_to_one",
    align_corners: Any = True,
) -> np.ndarray:
    return _resample(op, x, np.asarray(coordinates, np.float64), sampling_mode, padding_mode, padding_value,
                     coordinates_mode, align_corners)


@MIL_OPS.register("affine")
def affine(
    op: OpContext, *, x: np.ndarray, transform_matrix: np.ndarray, output_height: Any, output_width: Any,
    sampling_mode: str = "bilinear", padding_mode: str = "constant", padding_value: Any = 0.0,
    coordinates_mode: str = "normalized_minus_one_to_one", align_corners: Any = True,
) -> np.ndarray:
    """Output (x, y) on the normalized output grid samples the input at (a0 x + a1 y + a2, b0 x + b1 y + b2)."""
    matrices = np.asarray(transform_matrix, np.float64).reshape(-1, 6)
    if matrices.shape[0] not in (1, x.shape[0]):
        raise op.shape_error("transform_matrix must have 1 or B rows of 6", x=x, transform_matrix=transform_matrix)
    height, width = int(output_height), int(output_width)

    def grid(size: int) -> np.ndarray:
        i = np.arange(size, dtype=np.float64)
        if bool(align_corners):
            return np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
        return (2 * i + 1) / size - 1

    gy, gx = np.meshgrid(grid(height), grid(width), indexing="ij")
    matrices = np.broadcast_to(matrices, (x.shape[0], 6))
    coordinates = np.stack([
        np.stack([m[0] * gx + m[1] * gy + m[2], m[3] * gx + m[4] * gy + m[5]], axis=-1) for m in matrices
    ])
    return _resample(op, x, coordinates, sampling_mode, padding_mode, padding_value, coordinates_mode, align_corners)
