"""MIL ops that move data without computing on it (coremltools `tensor_transformation.py`).

reshape, transpose, expand_dims, squeeze, flatten2d, reverse, slice_by_index,
slice_by_size, and the block rearrangements: depth_to_space / space_to_depth
(TensorFlow's DCR order) and pixel_shuffle / pixel_unshuffle (PyTorch's CRD
order).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext, variadic
from ..opsets import IOS16, IOS17, IOS18


def int_list(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def normalize_axes(op: OpContext, axes: Any, rank: int) -> list[int]:
    """Axes in [0, rank), negative ones counted from the end, or a ShapeMismatchError."""
    result = []
    for axis in int_list(axes):
        if not -rank <= axis < rank:
            raise op.shape_error(f"axis {axis} is out of range for rank {rank}")
        result.append(axis % rank)
    return result


def _reshape(op: OpContext, x: np.ndarray, shape: Any, zeros_from_right: bool) -> np.ndarray:
    """Target dims: positive sizes, one -1 (inferred), 0 (x's dim at the same place: iOS15 needs as
    many dims as x; `zeros_from_right`, iOS17, counts from the right, 1 past x's rank)."""
    target = int_list(shape)
    if 0 in target and not zeros_from_right and len(target) != x.ndim:
        raise op.shape_error(f"a 0 in shape {target} needs as many dims as x has (rank {x.ndim}; iOS17 "
                             "counts the dims from the right)", x=x)
    offset = x.ndim - len(target)
    target = [(x.shape[i + offset] if i + offset >= 0 else 1) if d == 0 else d for i, d in enumerate(target)]
    known = int(np.prod([d for d in target if d != -1]))
    if target.count(-1) > 1 or (target.count(-1) == 1 and (known == 0 or x.size % known)) or (
        -1 not in target and known != x.size
    ):
        raise op.shape_error(f"cannot reshape {x.size} elements to {int_list(shape)}", x=x)
    return np.reshape(x, target)


@MIL_OPS.register("reshape")
def reshape(op: OpContext, *, x: np.ndarray, shape: Any) -> np.ndarray:
    return _reshape(op, x, shape, zeros_from_right=False)


@MIL_OPS.register("reshape", since=IOS17)
def reshape_ios17(op: OpContext, *, x: np.ndarray, shape: Any) -> np.ndarray:
    return _reshape(op, x, shape, zeros_from_right=True)


@MIL_OPS.register("reshape_like", since=IOS16)
@variadic("ref_tensors")
def reshape_like(op: OpContext, *, x: np.ndarray, ref_tensors: list[Any], begins: Any, ends: Any,
                 end_masks: Any) -> np.ndarray:
    """x reshaped to the concatenation of ref_tensors[i].shape[begins[i]:ends[i]] (to the end if masked)."""
    shape: list[int] = []
    for ref, begin, end, mask in zip(ref_tensors, int_list(begins), int_list(ends), np.asarray(end_masks).reshape(-1)):
        shape += list(np.shape(ref)[begin:] if mask else np.shape(ref)[begin:end])
    return _reshape(op, x, shape, zeros_from_right=True)


@MIL_OPS.register("transpose")
def transpose(op: OpContext, *, x: np.ndarray, perm: Any) -> np.ndarray:
    axes = normalize_axes(op, perm, x.ndim)
    if sorted(axes) != list(range(x.ndim)):
        raise op.shape_error(f"perm {int_list(perm)} is not a permutation of x's {x.ndim} axes", x=x)
    return np.transpose(x, axes)


@MIL_OPS.register("expand_dims")
def expand_dims(op: OpContext, *, x: Any, axes: Any) -> np.ndarray:
    x = np.asarray(x)
    out_rank = x.ndim + len(int_list(axes))
    shape = list(x.shape)
    for axis in sorted(normalize_axes(op, axes, out_rank)):
        shape.insert(axis, 1)
    return x.reshape(shape)


@MIL_OPS.register("squeeze")
def squeeze(op: OpContext, *, x: np.ndarray, axes: Any = None) -> np.ndarray:
    if axes is None:
        return np.squeeze(x)
    chosen = normalize_axes(op, axes, x.ndim)
    if any(x.shape[a] != 1 for a in chosen):
        raise op.shape_error(f"cannot squeeze axes {int_list(axes)}: not all of size 1", x=x)
    return np.squeeze(x, axis=tuple(chosen))


@MIL_OPS.register("flatten2d")
def flatten2d(op: OpContext, *, x: np.ndarray, axis: Any = 1) -> np.ndarray:
    axis = int(axis) + x.ndim if int(axis) < 0 else int(axis)
    if not 0 <= axis <= x.ndim:
        raise op.shape_error(f"axis {int(axis)} is out of range for rank {x.ndim}", x=x)
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


@MIL_OPS.register("reverse")
def reverse(op: OpContext, *, x: np.ndarray, axes: Any = None) -> np.ndarray:
    chosen = range(x.ndim) if axes is None else normalize_axes(op, axes, x.ndim)
    return np.flip(x, axis=tuple(chosen))


def slice_index(
    op: OpContext, x: np.ndarray, begin: Any, end: Any, stride: Any, begin_mask: Any, end_mask: Any,
    squeeze_mask: Any,
) -> tuple[Any, ...]:
    """The numpy index of x[begin:end:stride] per axis; masks ignore begin/end; squeeze_mask indexes at begin."""
    rank = x.ndim
    begins, ends = int_list(begin), int_list(end)
    strides = int_list(stride) if stride is not None else [1] * rank
    masks = [np.asarray(m, bool).reshape(-1) if m is not None else np.zeros(rank, bool)
             for m in (begin_mask, end_mask, squeeze_mask)]
    if not len(begins) == len(ends) == len(strides) == rank or any(m.size != rank for m in masks):
        raise op.shape_error(f"begin, end, stride and the masks must have {rank} entries (rank of x)",
                             x=x, begin=begins, end=ends)
    index: list[Any] = []
    for axis in range(rank):
        if masks[2][axis]:
            position = begins[axis]
            if not -x.shape[axis] <= position < x.shape[axis]:
                raise op.shape_error(f"index {position} is out of range on axis {axis}", x=x)
            index.append(position)
            continue
        start = None if masks[0][axis] else begins[axis]
        stop = None if masks[1][axis] else ends[axis]
        index.append(slice(start, stop, strides[axis]))
    return tuple(index)


@MIL_OPS.register("slice_by_index")
def slice_by_index(
    op: OpContext, *, x: np.ndarray, begin: Any, end: Any, stride: Any = None, begin_mask: Any = None,
    end_mask: Any = None, squeeze_mask: Any = None,
) -> np.ndarray:
    return np.asarray(x[slice_index(op, x, begin, end, stride, begin_mask, end_mask, squeeze_mask)])


@MIL_OPS.register("slice_update", since=IOS18)
def slice_update(
    op: OpContext, *, x: np.ndarray, update: Any, begin: Any, end: Any, stride: Any = None,
    begin_mask: Any = None, end_mask: Any = None, squeeze_mask: Any = None,
) -> np.ndarray:
    """x with the slice_by_index region replaced by update (of exactly that region's shape)."""
    index = slice_index(op, x, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    if x[index].shape != np.shape(update):
        raise op.shape_error(f"update must have the sliced shape {x[index].shape}", x=x, update=update)
    result = x.copy()
    result[index] = update
    return result


@MIL_OPS.register("slice_by_size")
def slice_by_size(op: OpContext, *, x: np.ndarray, begin: Any, size: Any) -> np.ndarray:
    """x[begin : begin + size] per axis; size -1 takes the rest."""
    begins, sizes = int_list(begin), int_list(size)
    if not len(begins) == len(sizes) == x.ndim:
        raise op.shape_error(f"begin and size must have {x.ndim} entries", x=x, begin=begins, size=sizes)
    index = []
    for axis, (start, count) in enumerate(zip(begins, sizes)):
        start = start + x.shape[axis] if start < 0 else start
        stop = x.shape[axis] if count == -1 else start + count
        if start < 0 or stop > x.shape[axis] or stop < start:
            raise op.shape_error(f"the slice [{start}, {stop}) does not fit axis {axis}", x=x)
        index.append(slice(start, stop))
    return x[tuple(index)]


def _block_check(op: OpContext, x: np.ndarray, channels_div: int, spatial_div: int) -> None:
    if x.ndim != 4 or x.shape[1] % channels_div or x.shape[2] % spatial_div or x.shape[3] % spatial_div:
        raise op.shape_error(
            f"x must be (N, C, H, W) with C divisible by {channels_div} and H, W by {spatial_div}", x=x
        )


@MIL_OPS.register("depth_to_space")
def depth_to_space(op: OpContext, *, x: np.ndarray, block_size: Any) -> np.ndarray:
    b = int(block_size)
    _block_check(op, x, b * b, 1)
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


@MIL_OPS.register("space_to_depth")
def space_to_depth(op: OpContext, *, x: np.ndarray, block_size: Any) -> np.ndarray:
    b = int(block_size)
    _block_check(op, x, 1, b)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@MIL_OPS.register("pixel_shuffle")
def pixel_shuffle(op: OpContext, *, x: np.ndarray, upscale_factor: Any) -> np.ndarray:
    f = int(upscale_factor)
    _block_check(op, x, f * f, 1)
    n, c, h, w = x.shape
    y = x.reshape(n, c // (f * f), f, f, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (f * f), h * f, w * f)


@MIL_OPS.register("pixel_unshuffle", since=IOS16)
def pixel_unshuffle(op: OpContext, *, x: np.ndarray, downscale_factor: Any) -> np.ndarray:
    f = int(downscale_factor)
    _block_check(op, x, 1, f)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // f, f, w // f, f).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * f * f, h // f, w // f)


@MIL_OPS.register("space_to_batch")
def space_to_batch(op: OpContext, *, x: np.ndarray, block_shape: Any, paddings: Any) -> np.ndarray:
    """TensorFlow's space_to_batch_nd on (N, C, H, W): pad H, W, then move blocks into the batch."""
    b0, b1 = int_list(block_shape)
    pads = np.asarray(paddings).reshape(2, 2)
    padded = np.pad(x, [(0, 0), (0, 0), tuple(pads[0]), tuple(pads[1])])
    n, c, h, w = padded.shape
    if h % b0 or w % b1:
        raise op.shape_error(f"the padded H, W ({h}, {w}) must be multiples of the block {b0, b1}", x=x)
    y = padded.reshape(n, c, h // b0, b0, w // b1, b1).transpose(3, 5, 0, 1, 2, 4)
    return y.reshape(b0 * b1 * n, c, h // b0, w // b1)


@MIL_OPS.register("batch_to_space")
def batch_to_space(op: OpContext, *, x: np.ndarray, block_shape: Any, crops: Any) -> np.ndarray:
    """The inverse of space_to_batch: blocks of the batch back into H, W, then crop."""
    b0, b1 = int_list(block_shape)
    n, c, h, w = x.shape
    if n % (b0 * b1):
        raise op.shape_error(f"the batch must be a multiple of {b0 * b1}", x=x)
    y = x.reshape(b0, b1, n // (b0 * b1), c, h, w).transpose(2, 3, 4, 0, 5, 1)
    y = y.reshape(n // (b0 * b1), c, h * b0, w * b1)
    (top, bottom), (left, right) = np.asarray(crops).reshape(2, 2)
    return y[:, :, top:h * b0 - bottom, left:w * b1 - right]


@MIL_OPS.register("sliding_windows")
def sliding_windows(op: OpContext, *, x: np.ndarray, axis: Any, size: Any, stride: Any = 1) -> np.ndarray:
    """Windows of `size` elements every `stride` along axis: a new dim of windows, then one of size."""
    ax = normalize_axes(op, axis, x.ndim)[0]
    size, stride = int(size), int(stride)
    if size > x.shape[ax]:
        raise op.shape_error(f"the window size {size} exceeds axis {ax}", x=x)
    starts = range(0, x.shape[ax] - size + 1, stride)
    return np.stack([np.take(x, range(s, s + size), axis=ax) for s in starts], axis=ax)


@MIL_OPS.register("reverse_sequence")
def reverse_sequence(
    op: OpContext, *, x: np.ndarray, lengths: Any, seq_axis: Any = 0, batch_axis: Any = 0
) -> np.ndarray:
    """For each batch index b, reverse the first lengths[b] elements along seq_axis."""
    seq, batch = normalize_axes(op, seq_axis, x.ndim)[0], normalize_axes(op, batch_axis, x.ndim)[0]
    counts = int_list(lengths)
    if len(counts) != x.shape[batch]:
        raise op.shape_error(f"lengths needs one entry per element of axis {batch}", x=x, lengths=counts)
    result = x.copy()
    for b, count in enumerate(counts):
        source = [slice(None)] * x.ndim
        source[batch] = b
        source[seq] = slice(0, count)
        result[tuple(source)] = np.flip(x[tuple(source)], axis=seq - (1 if batch < seq else 0))
    return result
