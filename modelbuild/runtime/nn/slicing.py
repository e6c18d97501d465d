"""Layers that cut, join, pick or repeat parts of blobs.

concat (old, axis -3 or -5), concatND, stack, split (old, axis -3), splitND,
slice (old), sliceStatic, sliceDynamic, gather, gatherAlongAxis, tile, crop,
padding, constantPad, reverse, reverseSeq, sequenceRepeat, copy.
"""
from __future__ import annotations

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32, normalize_axis


def _concat(layer: Layer, inputs: tuple[np.ndarray, ...], axis: int, interleave: bool = False) -> np.ndarray:
    ranks = {x.ndim for x in inputs}
    if len(ranks) != 1:
        raise layer.mismatch("input ranks", [list(x.shape) for x in inputs], "equal ranks")
    rank = ranks.pop()
    axis = normalize_axis(layer, axis, rank)
    first = inputs[0].shape
    for x in inputs[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(first, x.shape)) if i != axis):
            raise layer.mismatch(
                f"shapes outside the concatenation axis {axis}",
                " and ".join(str(list(v.shape)) for v in inputs), "equal sizes on every other axis",
            )
    if not interleave:
        return np.concatenate(inputs, axis=axis)
    if len({x.shape for x in inputs}) != 1:
        raise layer.mismatch("input shapes", " and ".join(str(list(v.shape)) for v in inputs),
                             "equal shapes (interleave)")
    shape = list(first)
    shape[axis] *= len(inputs)
    return np.stack(inputs, axis=axis + 1).reshape(shape)  # out[i * n + j] = inputs[j][i] along the axis


@NN_LAYERS.register("concat")
def concat(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    """Concatenate along axis -3 (channels), or -5 (sequence) if sequenceConcat."""
    minimum = 5 if layer.params.sequenceConcat else 3
    for x in inputs:
        layer.need_rank(x, minimum)
    return _concat(layer, inputs, -5 if layer.params.sequenceConcat else -3)


@NN_LAYERS.register("concatND")
def concat_nd(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    """Concatenate along `axis` (negative allowed); `interleave` alternates the inputs' slices."""
    return _concat(layer, inputs, int(layer.params.axis), bool(layer.params.interleave))


@NN_LAYERS.register("stack")
def stack(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    """Stack equal-shape inputs along a new axis."""
    shapes = {x.shape for x in inputs}
    if len(shapes) != 1:
        raise layer.mismatch("input shapes", [list(x.shape) for x in inputs], "equal shapes")
    axis = normalize_axis(layer, int(layer.params.axis), inputs[0].ndim + 1)
    return np.stack(inputs, axis=axis)


@NN_LAYERS.register("split")
def split(layer: Layer, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Split axis -3 into nOutputs equal parts."""
    layer.need_rank(x, 3)
    n = int(layer.params.nOutputs) or len(layer.outputs)
    if x.shape[-3] % n:
        raise layer.mismatch("channels", x.shape[-3], f"a multiple of nOutputs = {n}")
    return tuple(np.split(x, n, axis=-3))


@NN_LAYERS.register("splitND")
def split_nd(layer: Layer, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Split `axis` into numSplits (near-)equal parts or into splitSizes."""
    p = layer.params
    axis = normalize_axis(layer, int(p.axis), x.ndim)
    sizes = [int(s) for s in p.splitSizes]
    if sizes:
        if sum(sizes) != x.shape[axis]:
            raise layer.mismatch(f"sum of splitSizes {sizes}", sum(sizes), f"axis {axis} size {x.shape[axis]}")
        return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))
    n = int(p.numSplits) or len(layer.outputs)
    if x.shape[axis] < n:
        raise layer.mismatch(f"axis {axis} size", x.shape[axis], f">= numSplits = {n}")
    return tuple(np.array_split(x, n, axis=axis))  # uneven: the first parts get one more


@NN_LAYERS.register("slice")
def slice_old(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x[start:end:stride] along axis -3, -2 or -1 (CHANNEL, HEIGHT, WIDTH)."""
    p = layer.params
    axis = (-3, -2, -1)[p.axis]
    layer.need_rank(x, -axis)
    index = [slice(None)] * x.ndim
    index[axis] = slice(int(p.startIndex), int(p.endIndex), int(p.stride) or 1)
    return x[tuple(index)]


def _strided_slice(layer: Layer, x: np.ndarray, begin: list[int], end: list[int], strides: list[int],
                   begin_masks: list[bool], end_masks: list[bool], squeeze_masks: list[bool]) -> np.ndarray:
    rank = x.ndim
    for name, values in (("beginIds", begin), ("endIds", end), ("strides", strides)):
        if len(values) != rank:
            raise layer.mismatch(f"length of {name}", len(values), f"the input rank {rank} (shape {list(x.shape)})")
    squeeze_axes = tuple(a for a, m in enumerate(squeeze_masks) if m)
    index = []
    for axis in range(rank):
        start = None if axis < len(begin_masks) and begin_masks[axis] else begin[axis]
        stop = None if axis < len(end_masks) and end_masks[axis] else end[axis]
        if axis in squeeze_axes:  # like TensorFlow's shrink_axis_mask: take the begin index, ignore end
            first = (start or 0) + (x.shape[axis] if (start or 0) < 0 else 0)
            if not 0 <= first < x.shape[axis]:
                raise layer.mismatch(f"begin index of squeezed axis {axis}", start, f"inside size {x.shape[axis]}")
            index.append(slice(first, first + 1))
            continue
        index.append(slice(start, stop, strides[axis] or 1))
    y = x[tuple(index)]
    if squeeze_axes:
        y = np.squeeze(y, axis=squeeze_axes)
        if y.ndim == 0:
            y = y.reshape(1)
    return y


@NN_LAYERS.register("sliceStatic")
def slice_static(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Strided slice with begin/end ids, masks and strides per axis."""
    p = layer.params
    squeeze = list(getattr(p, "squeezeMasks", []))
    return _strided_slice(layer, x, list(p.beginIds), list(p.endIds), list(p.strides),
                          list(p.beginMasks), list(p.endMasks), squeeze)


def _uniform_to_rank(values: list, rank: int) -> list:
    """A parameter list of one repeated value, at the input's rank.

    coremltools' add_slice_dynamic writes its defaults five long whatever the rank ([1] * 5 strides,
    [False] * 5 masks); a list of one repeated value means that value on every axis. Other lists are
    returned as they are, for _strided_slice to reject when their length is not the rank.
    """
    return [values[0]] * rank if values and len(values) != rank and len(set(values)) == 1 else values


@NN_LAYERS.register("sliceDynamic")
def slice_dynamic(layer: Layer, x: np.ndarray, begin: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """Strided slice whose begin ids (and optionally end ids, strides, masks) come from inputs."""
    p = layer.params
    as_ints = lambda a: [int(v) for v in np.asarray(a).reshape(-1)]  # noqa: E731
    as_bools = lambda a: [bool(v) for v in np.asarray(a).reshape(-1)]  # noqa: E731
    fields = (("endIds", as_ints), ("strides", as_ints), ("beginMasks", as_bools), ("endMasks", as_bools),
              ("squeezeMasks", as_bools))
    end, strides, begin_masks, end_masks, squeeze = (
        convert(rest[i]) if len(rest) > i else _uniform_to_rank(list(getattr(p, field)), x.ndim)
        for i, (field, convert) in enumerate(fields)
    )
    return _strided_slice(layer, x, as_ints(begin), end, strides, begin_masks, end_masks, squeeze)


def _indices(layer: Layer, indices: np.ndarray, size: int) -> np.ndarray:
    idx = np.asarray(indices).astype(np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise layer.mismatch("indices", f"values in [{idx.min()}, {idx.max()}]", f"[-{size}, {size - 1}]")
    return np.where(idx < 0, idx + size, idx)


@NN_LAYERS.register("gather")
def gather(layer: Layer, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """data.take(indices, axis) with negative indices and axis."""
    axis = normalize_axis(layer, int(layer.params.axis), data.ndim)
    return np.take(data, _indices(layer, indices, data.shape[axis]), axis=axis)


@NN_LAYERS.register("gatherAlongAxis")
def gather_along_axis(layer: Layer, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """np.take_along_axis(data, indices, axis)."""
    axis = normalize_axis(layer, int(layer.params.axis), data.ndim)
    return np.take_along_axis(data, _indices(layer, indices, data.shape[axis]), axis=axis)


@NN_LAYERS.register("tile")
def tile(layer: Layer, x: np.ndarray, *reps_input: np.ndarray) -> np.ndarray:
    """Repeat the blob `reps` times per axis (reps from the params or a second input)."""
    reps = [int(r) for r in (np.asarray(reps_input[0]).reshape(-1) if reps_input else layer.params.reps)]
    if not 1 <= len(reps) <= x.ndim:
        raise layer.mismatch("length of reps", len(reps), f"1 to the input rank {x.ndim} (leading axes repeat once)")
    return np.tile(x, reps)


@NN_LAYERS.register("crop")
def crop(layer: Layer, x: np.ndarray, *reference: np.ndarray) -> np.ndarray:
    """Crop H, W by border amounts, or to the second input's H, W at `offset`."""
    layer.need_rank(x, 3)
    p = layer.params
    h, w = x.shape[-2:]
    if reference:
        out_h, out_w = reference[0].shape[-2:]
        off = [int(o) for o in p.offset] or [0, 0]
        top, left = off[0], off[1] if len(off) > 1 else off[0]
    else:
        amounts = list(p.cropAmounts.borderAmounts)
        top, bottom = (int(amounts[0].startEdgeSize), int(amounts[0].endEdgeSize)) if amounts else (0, 0)
        left, right = (int(amounts[1].startEdgeSize), int(amounts[1].endEdgeSize)) if len(amounts) > 1 else (0, 0)
        out_h, out_w = h - top - bottom, w - left - right
    if top + out_h > h or left + out_w > w or out_h <= 0 or out_w <= 0:
        raise layer.mismatch("crop window inside the input H, W", [top, left, out_h, out_w], f"within [{h}, {w}]")
    return x[..., top:top + out_h, left:left + out_w]


@NN_LAYERS.register("padding")
def padding(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Pad H, W with a constant, by reflection (edge excluded) or by replication."""
    layer.need_rank(x, 2)
    p = layer.params
    amounts = list(p.paddingAmounts.borderAmounts)
    top, bottom = (int(amounts[0].startEdgeSize), int(amounts[0].endEdgeSize)) if amounts else (0, 0)
    left, right = (int(amounts[1].startEdgeSize), int(amounts[1].endEdgeSize)) if len(amounts) > 1 else (0, 0)
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    kind = p.WhichOneof("PaddingType")
    if kind == "reflection":
        if max(top, bottom) >= x.shape[-2] or max(left, right) >= x.shape[-1]:
            raise layer.mismatch("reflection padding vs H, W", [top, bottom, left, right], f"< {list(x.shape[-2:])}")
        return np.pad(x, widths, mode="reflect")
    if kind == "replication":
        return np.pad(x, widths, mode="edge")
    return np.pad(x, widths, mode="constant", constant_values=np.float32(p.constant.value))


@NN_LAYERS.register("constantPad")
def constant_pad(layer: Layer, x: np.ndarray, *amounts_input: np.ndarray) -> np.ndarray:
    """Pad every axis with `value`: [before_0, after_0, before_1, ...] (or target sizes)."""
    p = layer.params
    amounts = [int(a) for a in (np.asarray(amounts_input[0]).reshape(-1) if amounts_input else p.padAmounts)]
    if len(amounts) != 2 * x.ndim:
        raise layer.mismatch("length of padAmounts", len(amounts), f"twice the input rank ({2 * x.ndim})")
    widths = []
    for axis in range(x.ndim):
        before, after = amounts[2 * axis], amounts[2 * axis + 1]
        if p.padToGivenOutputSizeMode:  # non-zero entries are output sizes
            before = before - x.shape[axis] if before else 0
            after = after - x.shape[axis] if after else 0
        if before < 0 or after < 0:
            raise layer.mismatch(f"padding of axis {axis}", [before, after], "non-negative amounts")
        widths.append((before, after))
    return np.pad(x, widths, mode="constant", constant_values=np.float32(p.value))


@NN_LAYERS.register("reverse")
def reverse(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Flip every axis whose reverseDim is true."""
    dims = list(layer.params.reverseDim)
    if len(dims) != x.ndim:
        raise layer.mismatch("length of reverseDim", len(dims), f"the input rank {x.ndim}")
    return np.flip(x, axis=tuple(i for i, r in enumerate(dims) if r)).copy()


@NN_LAYERS.register("reverseSeq")
def reverse_seq(layer: Layer, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each batch entry b, reverse the first lengths[b] steps along sequenceAxis."""
    p = layer.params
    batch_axis = normalize_axis(layer, int(p.batchAxis), x.ndim)
    seq_axis = normalize_axis(layer, int(p.sequenceAxis), x.ndim)
    counts = np.asarray(lengths).astype(np.int64).reshape(-1)
    if counts.size != x.shape[batch_axis]:
        raise layer.mismatch("number of sequence lengths", counts.size, f"batch size {x.shape[batch_axis]}")
    out = f32(x).copy()
    for b, count in enumerate(counts):
        index = [slice(None)] * x.ndim
        index[batch_axis] = b
        index[seq_axis] = slice(0, int(count))
        out[tuple(index)] = np.flip(f32(x)[tuple(index)], axis=seq_axis - (1 if batch_axis < seq_axis else 0))
    return out


@NN_LAYERS.register("sequenceRepeat")
def sequence_repeat(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Repeat the blob nRepetitions times along axis -5 (sequence)."""
    layer.need_rank(x, 5)
    return np.concatenate([x] * (int(layer.params.nRepetitions) or 1), axis=-5)


@NN_LAYERS.register("copy")
def copy(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The input, unchanged."""
    return f32(x).copy()
