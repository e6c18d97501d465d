"""MIL gather and scatter ops (coremltools `scatter_gather.py`, iOS15..iOS17).

Indices: iOS15/16 ops accept [-size, size) (negative ones count from the end)
and refuse the rest with a ValueError naming the op. From iOS17 only [0, size)
is valid and the ops take `validate_indices`: when it is set an invalid index
raises `InvalidIndicesError` (a RuntimeError, as Core ML's predict raises);
when not, the behaviour is undefined in Core ML, and this runtime wraps
negative indices in gathers (as iOS15 does, so one gather kernel serves every
opset) and drops the invalid updates of scatters (so scatters have one kernel
per opset, sharing their code). Scatter modes: update, add, sub, mul, div, max,
min (duplicates accumulate; `update` keeps the last).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from modelbuild.runtime.registry import ModelRuntimeError

from ..kernel import MIL_OPS, OpContext
from ..opsets import IOS17
from .reshaping import normalize_axes


class InvalidIndicesError(ModelRuntimeError, RuntimeError):
    """An iOS17+ op with validate_indices met an index outside [0, size)."""


def _checked_indices(op: OpContext, indices: Any, size: int, validate: Any = False) -> np.ndarray:
    """Indices in [0, size): negative ones wrapped (iOS15/16, or iOS17 gathers without validation)."""
    indices = np.asarray(indices).astype(np.int64)
    if bool(validate):
        _refuse_invalid(op, indices, size)
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise op.value_error(f"indices range over [{indices.min()}, {indices.max()}], outside an axis of size {size}")
    return np.where(indices < 0, indices + size, indices)


def _refuse_invalid(op: OpContext, indices: np.ndarray, size: int) -> None:
    bad = indices[(indices < 0) | (indices >= size)]
    if bad.size:
        raise InvalidIndicesError(
            f"Unable to compute the prediction using ML Program: {op.describe()} has index {bad[0]} "
            f"outside [0, {size}) and validate_indices is set (iOS17+ indices may not be negative)."
        )


Placement = Callable[[OpContext, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def wrapped_positions(op: OpContext, indices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """iOS15 scatter indices: [-size, size), negative ones from the end; every update is used."""
    return _checked_indices(op, indices, size), np.ones(np.shape(indices), bool)


def in_bounds_positions(validate_indices: Any) -> Placement:
    """iOS17 scatter indices: [0, size); invalid ones raise (validate_indices) or their updates are dropped."""

    def place(op: OpContext, indices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices).astype(np.int64)
        if bool(validate_indices):
            _refuse_invalid(op, indices, size)
        valid = (indices >= 0) & (indices < size)
        return np.where(valid, indices, 0), valid

    return place


@MIL_OPS.register("gather")
def gather(
    op: OpContext, *, x: np.ndarray, indices: Any, axis: Any = 0, batch_dims: Any = 0,
    validate_indices: Any = False,
) -> np.ndarray:
    ax = normalize_axes(op, axis, x.ndim)[0]
    batch = int(batch_dims)
    indices = _checked_indices(op, indices, x.shape[ax], validate_indices)
    if batch == 0:
        return np.take(x, indices, axis=ax)
    if x.shape[:batch] != indices.shape[:batch] or ax < batch:
        raise op.shape_error(f"the first {batch} (batch) dims of x and indices must agree", x=x, indices=indices)
    flat_x = x.reshape((-1,) + x.shape[batch:])
    flat_i = indices.reshape((-1,) + indices.shape[batch:])
    parts = [np.take(flat_x[b], flat_i[b], axis=ax - batch) for b in range(flat_x.shape[0])]
    return np.stack(parts).reshape(x.shape[:batch] + parts[0].shape)


@MIL_OPS.register("gather_along_axis")
def gather_along_axis(
    op: OpContext, *, x: np.ndarray, indices: Any, axis: Any = 0, validate_indices: Any = False
) -> np.ndarray:
    ax = normalize_axes(op, axis, x.ndim)[0]
    indices = _checked_indices(op, indices, x.shape[ax], validate_indices)
    if indices.ndim != x.ndim or any(i != s for d, (i, s) in enumerate(zip(indices.shape, x.shape)) if d != ax):
        raise op.shape_error("indices must match x in every dim but the axis", x=x, indices=indices)
    return np.take_along_axis(x, indices, axis=ax)


@MIL_OPS.register("gather_nd")
def gather_nd(
    op: OpContext, *, x: np.ndarray, indices: Any, batch_dims: Any = 0, validate_indices: Any = False
) -> np.ndarray:
    indices = np.asarray(indices).astype(np.int64)
    batch = int(batch_dims)
    depth = indices.shape[-1]
    if batch + depth > x.ndim or x.shape[:batch] != indices.shape[:batch]:
        raise op.shape_error("indices' last dim plus batch_dims exceeds x's rank, or batch dims differ",
                             x=x, indices=indices)
    flat_x = x.reshape((-1,) + x.shape[batch:])
    flat_i = indices.reshape((flat_x.shape[0], -1, depth))
    parts = []
    for b in range(flat_x.shape[0]):
        coords = [_checked_indices(op, flat_i[b][:, d], x.shape[batch + d], validate_indices) for d in range(depth)]
        parts.append(flat_x[b][tuple(coords)])
    return np.stack(parts).reshape(indices.shape[:-1] + x.shape[batch + depth:])


_SCATTER: dict[str, Callable[..., Any] | None] = {
    "update": None, "add": np.add, "sub": np.subtract, "mul": np.multiply,
    "div": np.divide, "max": np.maximum, "min": np.minimum,
}


def _scatter_into(op: OpContext, data: np.ndarray, index: tuple, updates: np.ndarray, mode: str) -> np.ndarray:
    if mode not in _SCATTER:
        raise op.value_error(f"scatter mode {mode!r} is not one of {', '.join(_SCATTER)}")
    out = data.copy()
    ufunc = _SCATTER[mode]
    if ufunc is None:
        out[index] = updates
    else:
        ufunc.at(out, index, updates.astype(out.dtype))
    return out


def _scatter(op: OpContext, data: np.ndarray, indices: Any, updates: Any, axis: Any, mode: str,
             place: Placement) -> np.ndarray:
    ax = normalize_axes(op, axis, data.ndim)[0]
    flat = np.asarray(indices).reshape(-1)
    expected = data.shape[:ax] + (flat.size,) + data.shape[ax + 1:]
    if np.shape(updates) != expected:
        raise op.shape_error(f"updates must have shape {expected}", data=data, indices=flat, updates=updates)
    positions, valid = place(op, flat, data.shape[ax])
    moved_updates = np.moveaxis(np.asarray(updates), ax, 0)[valid]
    result = _scatter_into(op, np.moveaxis(data, ax, 0), (positions[valid],), moved_updates, mode)
    return np.moveaxis(result, 0, ax)


def _scatter_along_axis(op: OpContext, data: np.ndarray, indices: Any, updates: Any, axis: Any, mode: str,
                        place: Placement) -> np.ndarray:
    ax = normalize_axes(op, axis, data.ndim)[0]
    indices = np.asarray(indices)
    if indices.shape != np.shape(updates) or indices.ndim != data.ndim:
        raise op.shape_error("indices and updates must have the same shape and x's rank",
                             data=data, indices=indices, updates=updates)
    positions, valid = place(op, indices, data.shape[ax])
    grid = list(np.indices(indices.shape))
    grid[ax] = positions
    return _scatter_into(op, data, tuple(g[valid] for g in grid), np.asarray(updates)[valid], mode)


def _scatter_nd(op: OpContext, data: np.ndarray, indices: Any, updates: Any, mode: str,
                place: Placement) -> np.ndarray:
    indices = np.asarray(indices).astype(np.int64)
    depth = indices.shape[-1]
    expected = indices.shape[:-1] + data.shape[depth:]
    if np.shape(updates) != expected:
        raise op.shape_error(f"updates must have shape {expected}", data=data, indices=indices, updates=updates)
    checked = [place(op, indices[..., d], data.shape[d]) for d in range(depth)]
    valid = np.logical_and.reduce([mask for _, mask in checked])
    coords = tuple(positions[valid] for positions, _ in checked)
    return _scatter_into(op, data, coords, np.asarray(updates)[valid], mode)


@MIL_OPS.register("scatter")
def scatter(op: OpContext, *, data: np.ndarray, indices: Any, updates: np.ndarray, axis: Any = 0,
            mode: str = "add") -> np.ndarray:
    return _scatter(op, data, indices, updates, axis, mode, wrapped_positions)


@MIL_OPS.register("scatter", since=IOS17)
def scatter_ios17(op: OpContext, *, data: np.ndarray, indices: Any, updates: np.ndarray, axis: Any = 0,
                  mode: str = "add", validate_indices: Any = False) -> np.ndarray:
    return _scatter(op, data, indices, updates, axis, mode, in_bounds_positions(validate_indices))


@MIL_OPS.register("scatter_along_axis")
def scatter_along_axis(op: OpContext, *, data: np.ndarray, indices: Any, updates: np.ndarray, axis: Any = 0,
                       mode: str = "add") -> np.ndarray:
    return _scatter_along_axis(op, data, indices, updates, axis, mode, wrapped_positions)


@MIL_OPS.register("scatter_along_axis", since=IOS17)
def scatter_along_axis_ios17(op: OpContext, *, data: np.ndarray, indices: Any, updates: np.ndarray, axis: Any = 0,
                             mode: str = "add", validate_indices: Any = False) -> np.ndarray:
    return _scatter_along_axis(op, data, indices, updates, axis, mode, in_bounds_positions(validate_indices))


@MIL_OPS.register("scatter_nd")
def scatter_nd(op: OpContext, *, data: np.ndarray, indices: Any, updates: np.ndarray,
               mode: str = "add") -> np.ndarray:
    return _scatter_nd(op, data, indices, updates, mode, wrapped_positions)


@MIL_OPS.register("scatter_nd", since=IOS17)
def scatter_nd_ios17(op: OpContext, *, data: np.ndarray, indices: Any, updates: np.ndarray, mode: str = "add",
                     validate_indices: Any = False) -> np.ndarray:
    return _scatter_nd(op, data, indices, updates, mode, in_bounds_positions(validate_indices))
