"""Index-driven layers: scatter*, gatherND, topK, argSort, oneHot, cumSum, whereNonZero,
triangular masks, sliceBySize."""
from __future__ import annotations

from typing import Callable

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32, normalize_axis

_SCATTER_MODES: dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    0: lambda old, new: new,
    1: np.add,
    2: np.subtract,
    3: np.multiply,
    4: np.divide,
    5: np.maximum,
    6: np.minimum,
}


def _ints(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype(np.int64)


def _combine(layer: Layer, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    mode = int(layer.params.mode)
    if mode not in _SCATTER_MODES:
        raise layer.mismatch("scatter mode", mode, "0..6 (UPDATE, ADD, SUB, MUL, DIV, MAX, MIN)")
    return _SCATTER_MODES[mode](old, new)


@NN_LAYERS.register("scatter")
def scatter(layer: Layer, container: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """output[..., indices[j], ...] (op)= updates[..., j, ...] along `axis` (indices of any rank)."""
    axis = normalize_axis(layer, int(layer.params.axis), container.ndim)
    out = f32(container).copy()
    flat_indices = _ints(indices).reshape(-1)
    expected = container.shape[:axis] + np.shape(indices) + container.shape[axis + 1:]
    if np.shape(updates) != expected:
        raise layer.mismatch("updates shape", list(np.shape(updates)), list(expected))
    flat_updates = f32(updates).reshape(container.shape[:axis] + (flat_indices.size,) + container.shape[axis + 1:])
    moved_out = np.moveaxis(out, axis, 0)
    moved_updates = np.moveaxis(flat_updates, axis, 0)
    size = container.shape[axis]
    for i, index in enumerate(flat_indices):
        index = index + size if index < 0 else index
        moved_out[index] = _combine(layer, moved_out[index], moved_updates[i])
    return out


@NN_LAYERS.register("scatterND")
def scatter_nd(layer: Layer, container: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """output[tuple(indices[i])] (op)= updates[i] for every index vector (last axis of indices)."""
    out = f32(container).copy()
    idx = _ints(indices)
    flat_idx = idx.reshape(-1, idx.shape[-1])
    flat_updates = f32(updates).reshape((flat_idx.shape[0],) + container.shape[idx.shape[-1]:])
    for position, value in zip(flat_idx, flat_updates):
        key = tuple(position)
        out[key] = _combine(layer, out[key], value)
    return out


@NN_LAYERS.register("scatterAlongAxis")
def scatter_along_axis(layer: Layer, container: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """The inverse of gatherAlongAxis: out[idx along axis] (op)= updates."""
    axis = normalize_axis(layer, int(layer.params.axis), container.ndim)
    out = f32(container).copy()
    idx = _ints(indices)
    idx = np.where(idx < 0, idx + container.shape[axis], idx)
    for position in np.ndindex(idx.shape):
        target = list(position)
        target[axis] = idx[position]
        target_t = tuple(target)
        out[target_t] = _combine(layer, out[target_t], f32(updates)[position])
    return out


@NN_LAYERS.register("gatherND")
def gather_nd(layer: Layer, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """data[tuple(indices[..., :])]: the last axis of indices indexes the leading axes of data."""
    idx = _ints(indices)
    depth = idx.shape[-1]
    if depth > data.ndim:
        raise layer.mismatch("index depth (last axis of indices)", depth, f"<= data rank {data.ndim}")
    return f32(data[tuple(np.moveaxis(idx, -1, 0))])


@NN_LAYERS.register("topK")
def top_k(layer: Layer, x: np.ndarray, *k_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The K largest (or smallest) values along `axis`, sorted, and their indices."""
    p = layer.params
    axis = normalize_axis(layer, int(p.axis), x.ndim)
    k = int(np.asarray(k_input[0]).reshape(-1)[0]) if k_input else int(p.K)
    if not 0 < k <= x.shape[axis]:
        raise layer.mismatch("K", k, f"1..{x.shape[axis]} (axis {axis} of {list(x.shape)})")
    # numpy's default sort, as coremltools' own topK tests expect for ties
    order = np.argsort(x if p.useBottomK else -x, axis=axis)
    indices = np.take(order, np.arange(k), axis=axis)
    return f32(np.take_along_axis(x, indices, axis=axis)), f32(indices)


@NN_LAYERS.register("argSort")
def arg_sort(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Indices that sort `axis` ascending (or descending), ties in index order."""
    axis = normalize_axis(layer, int(layer.params.axis), x.ndim)
    return f32(np.argsort(-x if layer.params.descending else x, axis=axis, kind="stable"))


@NN_LAYERS.register("oneHot")
def one_hot(layer: Layer, indices: np.ndarray, *size_input: np.ndarray) -> np.ndarray:
    """A one-hot axis (size oneHotVectorSize or the second input) inserted at `axis` of the output."""
    p = layer.params
    depth = int(np.asarray(size_input[0]).reshape(-1)[0]) if size_input else int(p.oneHotVectorSize)
    idx = _ints(indices)
    axis = normalize_axis(layer, int(p.axis), idx.ndim + 1)
    hot = np.moveaxis(np.arange(depth) == idx[..., None], -1, axis)
    return np.where(hot, np.float32(p.onValue), np.float32(p.offValue)).astype(np.float32)


@NN_LAYERS.register("cumSum")
def cum_sum(layer: Layer, x: np.ndarray, *axis_input: np.ndarray) -> np.ndarray:
    """Cumulative sum along `axis`; reverse runs from the end; excludeFinalSum makes it exclusive."""
    p = layer.params
    axis_value = int(np.asarray(axis_input[0]).reshape(-1)[0]) if axis_input else int(p.axis)
    axis = normalize_axis(layer, axis_value, x.ndim)
    data = np.flip(f32(x), axis) if p.reverse else f32(x)
    total = np.cumsum(data, axis=axis)
    if p.excludeFinalSum:
        total = total - data
    return f32(np.flip(total, axis) if p.reverse else total)


@NN_LAYERS.register("whereNonZero")
def where_non_zero(layer: Layer, x: np.ndarray) -> np.ndarray:
    """[N, rank] coordinates of the non-zero elements, in row-major order."""
    return f32(np.argwhere(np.asarray(x) != 0))


@NN_LAYERS.register("matrixBandPart")
def matrix_band_part(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Keep the band numLower below / numUpper above the diagonal (negative keeps all)."""
    p = layer.params
    rows, cols = x.shape[-2:]
    m = np.arange(rows)[:, None]
    n = np.arange(cols)[None, :]
    keep = ((p.numLower < 0) | (m - n <= p.numLower)) & ((p.numUpper < 0) | (n - m <= p.numUpper))
    return f32(np.where(keep, x, 0))


@NN_LAYERS.register("lowerTriangular")
def lower_triangular(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Zero the elements above diagonal k (np.tril)."""
    return f32(np.tril(x, int(layer.params.k)))


@NN_LAYERS.register("upperTriangular")
def upper_triangular(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Zero the elements below diagonal k (np.triu)."""
    return f32(np.triu(x, int(layer.params.k)))


@NN_LAYERS.register("sliceBySize")
def slice_by_size(layer: Layer, x: np.ndarray, begin: np.ndarray) -> np.ndarray:
    """x[begin:begin + size] along `axis`, begin from the second input."""
    p = layer.params
    axis = normalize_axis(layer, int(p.axis), x.ndim)
    start = int(np.asarray(begin).reshape(-1)[0])
    start = start + x.shape[axis] if start < 0 else start
    if start + int(p.size) > x.shape[axis]:
        raise layer.mismatch(f"slice [{start}, {start + p.size}) of axis {axis}", list(x.shape), "inside the input")
    return np.take(x, np.arange(start, start + int(p.size)), axis=axis)
