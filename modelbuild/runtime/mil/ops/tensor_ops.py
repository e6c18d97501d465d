"""MIL tensor construction and combination ops (coremltools `tensor_operation.py`).

concat, split, stack, tile, pad, fill, fill_like, shape, range_1d, topk,
argsort, cumsum, band_part, non_zero, one_hot.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext, variadic
from ..opsets import IOS16
from .reshaping import int_list, normalize_axes


@MIL_OPS.register("concat")
@variadic("values")
def concat(op: OpContext, *, values: list[Any], axis: Any, interleave: Any = False) -> np.ndarray:
    arrays = [np.asarray(v) for v in values]
    shapes = {f"values[{i}]": a for i, a in enumerate(arrays)}
    rank = arrays[0].ndim
    if any(a.ndim != rank for a in arrays):
        raise op.shape_error("all values must have the same rank", **shapes)
    if rank == 0:  # coremltools' type inference: scalars count as length 1 and make a vector
        return np.stack(arrays)
    ax = normalize_axes(op, axis, rank)[0]
    if any(a.shape[:ax] + a.shape[ax + 1:] != arrays[0].shape[:ax] + arrays[0].shape[ax + 1:] for a in arrays):
        raise op.shape_error(f"the values differ in a dimension other than the concat axis {ax}", **shapes)
    if not bool(interleave):
        return np.concatenate(arrays, axis=ax)
    if any(a.shape[ax] != arrays[0].shape[ax] for a in arrays):
        raise op.shape_error("interleave needs values of equal size along the axis", **shapes)
    stacked = np.stack(arrays, axis=ax + 1)  # (..., n, k, ...) -> interleaved (..., n*k, ...)
    shape = list(arrays[0].shape)
    shape[ax] *= len(arrays)
    return stacked.reshape(shape)


@MIL_OPS.register("split")
def split(op: OpContext, *, x: np.ndarray, axis: Any, num_splits: Any = None, split_sizes: Any = None) -> tuple:
    ax = normalize_axes(op, axis, x.ndim)[0]
    if split_sizes is not None:
        sizes = int_list(split_sizes)
        if sum(sizes) != x.shape[ax]:
            raise op.shape_error(f"split_sizes {sizes} do not add up to axis {ax}'s size", x=x)
    else:
        count = int(num_splits) if num_splits is not None else len(op.output_names)
        if count <= 0 or x.shape[ax] % count:
            raise op.shape_error(f"axis {ax} cannot be split into {count} equal parts", x=x)
        sizes = [x.shape[ax] // count] * count
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=ax))


@MIL_OPS.register("stack")
@variadic("values")
def stack(op: OpContext, *, values: list[Any], axis: Any) -> np.ndarray:
    arrays = [np.asarray(v) for v in values]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise op.shape_error("all values must have the same shape", **{f"values[{i}]": a for i, a in enumerate(arrays)})
    return np.stack(arrays, axis=normalize_axes(op, axis, arrays[0].ndim + 1)[0])


@MIL_OPS.register("tile")
def tile(op: OpContext, *, x: np.ndarray, reps: Any) -> np.ndarray:
    repeats = int_list(reps)
    if len(repeats) != x.ndim:
        raise op.shape_error(f"reps {repeats} must have one entry per dim of x", x=x)
    return np.tile(x, repeats)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@MIL_OPS.register("pad")
def pad(op: OpContext, *, x: np.ndarray, pad: Any, mode: str = "constant", constant_val: Any = 0.0) -> np.ndarray:
    amounts = int_list(pad)
    if len(amounts) % 2 or len(amounts) // 2 > x.ndim:
        raise op.shape_error(f"pad {amounts} must hold (before, after) pairs for at most {x.ndim} dims", x=x)
    if mode not in _PAD_MODES:
        raise op.value_error(f"pad mode {mode!r} is not one of {', '.join(_PAD_MODES)}")
    pairs = [(0, 0)] * (x.ndim - len(amounts) // 2) + [
        (amounts[2 * i], amounts[2 * i + 1]) for i in range(len(amounts) // 2)
    ]
    if mode == "constant":
        return np.pad(x, pairs, mode="constant", constant_values=np.asarray(constant_val, x.dtype))
    limit = 1 if mode == "reflect" else 0
    if any(max(p) > size - limit for p, size in zip(pairs, x.shape) if max(p) > 0):
        raise op.shape_error(f"{mode} padding {amounts} is too large for x", x=x)
    return np.pad(x, pairs, mode=_PAD_MODES[mode])


@MIL_OPS.register("fill")
def fill(op: OpContext, *, shape: Any, value: Any = 0.0) -> np.ndarray:
    return np.full(int_list(shape), value, dtype=op.output_dtype())


@MIL_OPS.register("fill_like", since=IOS16)
def fill_like(op: OpContext, *, ref_tensor: Any, value: Any = 0.0) -> np.ndarray:
    return np.full(np.shape(ref_tensor), value, dtype=op.output_dtype())


@MIL_OPS.register("shape")
def shape(op: OpContext, *, x: Any) -> np.ndarray:
    return np.asarray(np.shape(x), dtype=np.int32)


@MIL_OPS.register("range_1d")
def range_1d(op: OpContext, *, end: Any, start: Any, step: Any) -> np.ndarray:
    if np.asarray(step) == 0:
        raise op.value_error("step must not be 0")
    return np.arange(np.asarray(start), np.asarray(end), np.asarray(step))


def _sort_indices(x: np.ndarray, axis: int, ascending: bool) -> np.ndarray:
    """Stable order along axis; descending keeps equal values in index order."""
    return np.argsort(x if ascending else -x.astype(np.float64), axis=axis, kind="stable")


@MIL_OPS.register("topk")
def topk(
    op: OpContext, *, x: np.ndarray, k: Any = 1, axis: Any = -1, ascending: Any = False, sort: Any = True,
    return_indices: Any = True, output_indices_dtype: str = "int32",
) -> Any:
    ax = normalize_axes(op, axis, x.ndim)[0]
    count = int(k) if int(k) >= 0 else x.shape[ax]
    if count > x.shape[ax]:
        raise op.shape_error(f"k={count} is larger than axis {ax} (size {x.shape[ax]})", x=x)
    # sort=False allows any order; Core ML's CPU (and coremltools' iOS16 test) keep them sorted
    indices = np.take(_sort_indices(x, ax, bool(ascending)), np.arange(count), axis=ax)
    values = np.take_along_axis(x, indices, axis=ax)
    return (values, indices) if bool(return_indices) else values


@MIL_OPS.register("argsort")
def argsort(op: OpContext, *, x: np.ndarray, axis: Any = -1, ascending: Any = False) -> np.ndarray:
    return _sort_indices(x, normalize_axes(op, axis, x.ndim)[0], bool(ascending))


@MIL_OPS.register("cumsum")
def cumsum(op: OpContext, *, x: np.ndarray, axis: Any = 0, exclusive: Any = False, reverse: Any = False) -> np.ndarray:
    ax = normalize_axes(op, axis, x.ndim)[0]
    data = np.flip(x, ax) if bool(reverse) else x
    total = np.cumsum(data, axis=ax, dtype=np.float64 if data.dtype.kind == "f" else None)
    if bool(exclusive):
        total = total - data
    return np.flip(total, ax) if bool(reverse) else total


@MIL_OPS.register("band_part")
def band_part(op: OpContext, *, x: np.ndarray, lower: Any = -1, upper: Any = -1) -> np.ndarray:
    """Keep the band of the last two dims: lower/upper diagonals (negative: all)."""
    if x.ndim < 2:
        raise op.shape_error("x must have rank 2 or more", x=x)
    rows, cols = x.shape[-2:]
    offset = np.arange(cols)[None, :] - np.arange(rows)[:, None]  # j - i
    keep = np.ones((rows, cols), bool)
    if int(lower) >= 0:
        keep &= -offset <= int(lower)
    if int(upper) >= 0:
        keep &= offset <= int(upper)
    return np.where(keep, x, np.zeros_like(x))


@MIL_OPS.register("non_zero")
def non_zero(op: OpContext, *, x: np.ndarray) -> np.ndarray:
    """Coordinates of the non-zero elements, shape (count, rank)."""
    return np.transpose(np.nonzero(x)).astype(np.int32)


@MIL_OPS.register("one_hot")
def one_hot(
    op: OpContext, *, indices: np.ndarray, one_hot_vector_size: Any, axis: Any = -1, on_value: Any = 1,
    off_value: Any = 0,
) -> np.ndarray:
    size = int(one_hot_vector_size)
    ax = normalize_axes(op, axis, indices.ndim + 1)[0]
    hot = np.moveaxis(np.arange(size) == np.asarray(indices)[..., None], -1, ax)
    return np.where(hot, on_value, off_value)
