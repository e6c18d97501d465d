"""MIL resampling of the last two (spatial) dims: nearest neighbour and bilinear.

Grid points follow coremltools' `ops/defs/iOS15/image_resizing.py` notes: for
an input size Xin and output size Xout, output i samples input coordinate
grid[i] (clamped to [0, Xin - 1]), with the sampling modes
STRICT_ALIGN_CORNERS, ALIGN_CORNERS, DEFAULT, OFFSET_CORNERS, UNALIGN_CORNERS.
Bilinear interpolation is separable: linear along H, then along W.
crop_resize has one kernel per opset (iOS15 roi, iOS16 pad_value, iOS17 boxes);
resize exists from iOS17. upsample_bilinear's iOS16 `half_pixel_centers`
defaults to iOS15's rule (not align_corners), so one kernel serves both.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext
from ..opsets import IOS16, IOS17

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
    """Output size floor(size * scale); output i takes input floor(i * size_in / size_out), the
    scale recomputed from the sizes (coremltools' fractional-scale test: 3 -> 3 columns at 1.12)."""
    height = math.floor(x.shape[-2] * float(scale_factor_height))
    width = math.floor(x.shape[-1] * float(scale_factor_width))
    return resize_nearest_neighbor(op, x=x, target_size_height=height, target_size_width=width)


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


@MIL_OPS.register("crop")
def crop(op: OpContext, *, x: np.ndarray, crop_height: Any, crop_width: Any) -> np.ndarray:
    (top, bottom), (left, right) = (np.asarray(c, np.int64).reshape(2) for c in (crop_height, crop_width))
    if x.ndim < 3 or top + bottom >= x.shape[-2] or left + right >= x.shape[-1]:
        raise op.shape_error("the crop amounts must leave part of the last two dims", x=x)
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


def box_grid(mode: str, start: float, end: float, size_out: int) -> np.ndarray:
    """Sample coordinates inside [start, end]; with start = 0 and end = Xin - 1 this is `sampling_grid`."""
    i = np.arange(size_out, dtype=np.float64)
    extent = end - start  # "Xin - 1" of the resize grids
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size_out == 1:
            return np.full(1, (start + end) / 2 if mode == "ALIGN_CORNERS" else start)
        return start + i * extent / (size_out - 1)
    if mode == "DEFAULT":
        return start + i * (extent + 1) / size_out
    if mode == "OFFSET_CORNERS":
        delta = max(1.0, extent) / size_out
        return start + 0.5 * delta + i * delta
    if mode == "UNALIGN_CORNERS":
        spacing = (extent + 1) / size_out
        return start + i * spacing + 0.5 * spacing - 0.5
    raise ValueError(f"sampling mode {mode!r} is not one of {', '.join(SAMPLING_MODES)}")


def _sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, pad_value: Any) -> np.ndarray:
    """Bilinear samples of image (C, H, W) at rows x cols; outside the image: pad_value (or the edge)."""
    height, width = image.shape[-2:]
    data = _lerp_axis(image.astype(np.float32), np.clip(rows, 0, height - 1), -2)
    data = _lerp_axis(data, np.clip(cols, 0, width - 1), -1)
    if pad_value is not None:
        outside = ((rows < 0) | (rows > height - 1))[:, None] | ((cols < 0) | (cols > width - 1))[None, :]
        data = np.where(outside, np.float32(pad_value), data)
    return data


_BOX_MODES = ("CORNERS_HEIGHT_FIRST", "CORNERS_WIDTH_FIRST", "CENTER_SIZE_HEIGHT_FIRST", "CENTER_SIZE_WIDTH_FIRST")


def _box_corners(op: OpContext, box: np.ndarray, mode: str) -> tuple[float, float, float, float]:
    """(h_start, w_start, h_end, w_end) of a box in any box_coordinate_mode."""
    a, b, c, d = (float(v) for v in box)
    if mode == "CORNERS_HEIGHT_FIRST":
        return a, b, c, d
    if mode == "CORNERS_WIDTH_FIRST":
        return b, a, d, c
    if mode == "CENTER_SIZE_HEIGHT_FIRST":
        return a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if mode == "CENTER_SIZE_WIDTH_FIRST":
        return b - d / 2, a - c / 2, b + d / 2, a + c / 2
    raise op.value_error(f"box_coordinate_mode {mode!r} is not one of {', '.join(_BOX_MODES)}")


def _crops(
    op: OpContext, x: np.ndarray, boxes: np.ndarray, images: list[list[int]], target_height: Any,
    target_width: Any, normalized_coordinates: Any, spatial_scale: Any, box_coordinate_mode: str,
    sampling_mode: str, pad_value: Any,
) -> np.ndarray:
    """(N, len(images[n]), C, th, tw): box n resized from each image listed for it."""
    if x.ndim != 4:
        raise op.shape_error("x must be (B, C, H, W)", x=x)
    height, width = x.shape[-2:]
    results = []
    for box, chosen in zip(boxes, images):
        h0, w0, h1, w1 = _box_corners(op, box * float(spatial_scale), box_coordinate_mode)
        if bool(normalized_coordinates):
            h0, h1, w0, w1 = h0 * (height - 1), h1 * (height - 1), w0 * (width - 1), w1 * (width - 1)
        rows = box_grid(sampling_mode, h0, h1, int(target_height))
        cols = box_grid(sampling_mode, w0, w1, int(target_width))
        results.append(np.stack([_sample(x[b], rows, cols, pad_value) for b in chosen]))
    return np.stack(results)


def _roi_crops(op: OpContext, x: np.ndarray, roi: Any, settings: tuple, pad_value: Any) -> np.ndarray:
    """iOS15/16 crops: roi (N, 1, 4|5, 1, 1) boxes every image, or the one its first column names."""
    rows = np.asarray(roi, np.float64).reshape(np.shape(roi)[0], -1)
    if rows.shape[1] == 5:
        return _crops(op, x, rows[:, 1:], [[int(i)] for i in rows[:, 0]], *settings, pad_value)
    if rows.shape[1] != 4:
        raise op.shape_error("roi must be (N, 1, 4, 1, 1) or (N, 1, 5, 1, 1)", roi=roi)
    return _crops(op, x, rows, [list(range(x.shape[0]))] * len(rows), *settings, pad_value)


@MIL_OPS.register("crop_resize")
def crop_resize(
    op: OpContext, *, x: np.ndarray, roi: Any, target_height: Any = 1, target_width: Any = 1,
    normalized_coordinates: Any = False, spatial_scale: Any = 1.0, box_coordinate_mode: str = "CORNERS_HEIGHT_FIRST",
    sampling_mode: str = "DEFAULT",
) -> np.ndarray:
    """iOS15: (N, B|1, C, th, tw) crops of roi; samples outside the image take the nearest edge pixel.

    ALIGN_CORNERS grids within a box follow coremltools' tests; the other sampling modes use the
    resize_bilinear grids with [0, Xin - 1] replaced by the box's [start, end].

    Normalized boxes outside [0, 1] break the op's contract and are not modelled: coremltools'
    iOS15 UNALIGN_CORNERS test crops [2, 2, 1, 1] and expects the 2 x 2 samples of the whole 4 x 4
    image (rows and columns 0.5, 2.5). Neither the edge clamp nor padding gives that; mirroring at
    the half-pixel border or falling back to the whole image would, and one test cannot tell
    which (if either) Core ML does."""
    settings = (target_height, target_width, normalized_coordinates, spatial_scale, box_coordinate_mode,
                sampling_mode)
    return _roi_crops(op, x, roi, settings, pad_value=None)


@MIL_OPS.register("crop_resize", since=IOS16)
def crop_resize_ios16(
    op: OpContext, *, x: np.ndarray, roi: Any, target_height: Any = 1, target_width: Any = 1,
    normalized_coordinates: Any = False, spatial_scale: Any = 1.0, box_coordinate_mode: str = "CORNERS_HEIGHT_FIRST",
    sampling_mode: str = "DEFAULT", pad_value: Any = 0.0,
) -> np.ndarray:
    """iOS16: as iOS15, but samples outside the image are pad_value."""
    settings = (target_height, target_width, normalized_coordinates, spatial_scale, box_coordinate_mode,
                sampling_mode)
    return _roi_crops(op, x, roi, settings, pad_value)


@MIL_OPS.register("crop_resize", since=IOS17)
def crop_resize_ios17(
    op: OpContext, *, x: np.ndarray, boxes: Any, box_indices: Any = None, target_height: Any = 1,
    target_width: Any = 1, normalized_coordinates: Any = False, spatial_scale: Any = 1.0,
    box_coordinate_mode: str = "CORNERS_HEIGHT_FIRST", sampling_mode: str = "DEFAULT", pad_value: Any = 0.0,
) -> np.ndarray:
    """iOS17: boxes (N, 4), box i cropped from image box_indices[i] (default i), giving (N, C, th, tw)."""
    flat = np.asarray(boxes, np.float64).reshape(-1, 4)
    indices = np.arange(len(flat)) if box_indices is None else np.asarray(box_indices).reshape(-1)
    if indices.size != len(flat) or indices.max(initial=0) >= x.shape[0]:
        raise op.shape_error("box_indices must hold one image index < B per box", x=x, boxes=flat)
    settings = (target_height, target_width, normalized_coordinates, spatial_scale, box_coordinate_mode,
                sampling_mode)
    return _crops(op, x, flat, [[int(i)] for i in indices], *settings, pad_value)[:, 0]


_INTERPOLATIONS = ("LINEAR", "NEAREST_NEIGHBOR")


@MIL_OPS.register("resize", since=IOS17)
def resize(
    op: OpContext, *, x: np.ndarray, shape: Any, resized_dims: Any, interpolation_mode: str = "LINEAR",
    sampling_mode: str = "DEFAULT",
) -> np.ndarray:
    """iOS17: resize the last `resized_dims` (1 or 2) dims to the end of `shape` (0 keeps x's size).

    NEAREST_NEIGHBOR takes the input pixel nearest to the sampling mode's grid point (halves round
    up): DEFAULT 2 -> 3 rows reads rows 0, 1, 1 (coremltools' iOS17 test), unlike
    resize_nearest_neighbor's floor.
    """
    count = int(resized_dims)
    target = [int(v) for v in np.asarray(shape).reshape(-1)][-count:] if count else []
    if count not in (1, 2) or x.ndim < count:
        raise op.shape_error(f"resized_dims must be 1 or 2 and at most rank(x), not {count}", x=x)
    sizes = [x.shape[x.ndim - count + i] if t == 0 else t for i, t in enumerate(target)]
    height, width = (x.shape[-2], sizes[0]) if count == 1 else sizes
    data = x if x.ndim >= 3 else x.reshape((1,) * (3 - x.ndim) + x.shape)
    if interpolation_mode == "LINEAR":
        result = _bilinear(op, data, height, width, str(sampling_mode))
    elif interpolation_mode == "NEAREST_NEIGHBOR" and sampling_mode in SAMPLING_MODES:
        rows, cols = (np.floor(sampling_grid(str(sampling_mode), size_in, size_out) + 0.5).astype(np.int64)
                      for size_in, size_out in ((data.shape[-2], height), (data.shape[-1], width)))
        result = _nearest(op, data, rows, cols)
    else:
        raise op.value_error(
            f"interpolation {interpolation_mode!r} with sampling {sampling_mode!r} is not supported; accepted: "
            f"{', '.join(_INTERPOLATIONS)} with any of {', '.join(SAMPLING_MODES)}"
        )
    return result.reshape(x.shape[:-2] + result.shape[-2:]) if x.ndim >= 2 else result.reshape(result.shape[-1:])
