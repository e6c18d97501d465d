"""Layers that change a blob's shape but not its values.

reshape (old, rank 5, CHANNEL_FIRST/LAST), reshapeStatic/Dynamic/Like,
rankPreservingReshape, flatten (old), flattenTo2D, squeeze, expandDims,
permute (old, rank 5), transpose, reorganizeData (space/depth, pixel shuffle).
A target that does not hold the input's element count raises ShapeMismatchError.
"""
from __future__ import annotations

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, normalize_axis


def _resolve_target(layer: Layer, x: np.ndarray, target: list[int], *, zero_copies: bool) -> tuple[int, ...]:
    shape = list(target)
    if zero_copies:
        for i, d in enumerate(shape):
            if d == 0 and i < x.ndim:
                shape[i] = x.shape[i]
    unknown = [i for i, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        raise layer.mismatch("target shape", shape, "at most one -1")
    known = int(np.prod([d for d in shape if d != -1])) if shape else 1
    if unknown:
        if known == 0 or x.size % known:
            raise layer.mismatch(
                f"input of {x.size} elements (shape {list(x.shape)}) reshaped to", shape, "a shape that divides it")
        shape[unknown[0]] = x.size // known
    elif known != x.size:
        raise layer.mismatch(
            f"element count of the target shape {shape}", f"{known} elements",
            f"{x.size} elements of the input shape {list(x.shape)}",
        )
    return tuple(int(d) for d in shape)


@NN_LAYERS.register("reshapeStatic")
def reshape_static(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Reshape to `targetShape` (-1 infers one dimension)."""
    return np.reshape(x, _resolve_target(layer, x, list(layer.params.targetShape), zero_copies=False))


@NN_LAYERS.register("reshapeDynamic")
def reshape_dynamic(layer: Layer, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Reshape to the shape held in the second input."""
    target = [int(d) for d in np.asarray(shape).reshape(-1)]
    return np.reshape(x, _resolve_target(layer, x, target, zero_copies=False))


@NN_LAYERS.register("reshapeLike")
def reshape_like(layer: Layer, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Reshape to the shape of the second input."""
    return np.reshape(x, _resolve_target(layer, x, list(np.shape(reference)), zero_copies=False))


@NN_LAYERS.register("rankPreservingReshape")
def rank_preserving_reshape(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Reshape keeping the rank; 0 keeps the input dimension, one -1 is inferred."""
    target = list(layer.params.targetShape)
    if len(target) != x.ndim:
        raise layer.mismatch("targetShape length vs input rank", len(target), x.ndim)
    return np.reshape(x, _resolve_target(layer, x, target, zero_copies=True))


def _pad_rank5(x: np.ndarray) -> np.ndarray:
    return x.reshape((1,) * (5 - x.ndim) + x.shape) if x.ndim < 5 else x


@NN_LAYERS.register("reshape")
def reshape_rank5(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The old rank-5 reshape: target [C, H, W] (per sequence step) or [Seq, C, H, W]."""
    p = layer.params
    target = [int(d) for d in p.targetShape]
    if len(target) not in (3, 4):
        raise layer.mismatch("targetShape length", len(target), "3 or 4")
    x5 = _pad_rank5(np.asarray(x))
    seq, batch = x5.shape[0], x5.shape[1]
    if len(target) == 3:
        out_shape = (seq, batch, *target)
    else:
        out_shape = (target[0], batch, *target[1:])
    if int(np.prod(out_shape)) != x5.size:
        raise layer.mismatch(
            f"element count of targetShape {target}", int(np.prod(out_shape)), f"{x5.size} (input {list(x5.shape)})")
    if p.mode == 1:  # CHANNEL_LAST: flatten as H, W, C; refill as H_out, W_out, C_out
        hwc = np.transpose(x5, (0, 1, 3, 4, 2)).reshape(x5.shape[0], batch, -1)
        c_out, h_out, w_out = out_shape[2:]
        return hwc.reshape(out_shape[0], batch, h_out, w_out, c_out).transpose(0, 1, 4, 2, 3)
    return x5.reshape(out_shape)


@NN_LAYERS.register("flatten")
def flatten(layer: Layer, x: np.ndarray) -> np.ndarray:
    """[..., C, H, W] -> [..., C*H*W, 1, 1] in channel-first or channel-last order."""
    layer.need_rank(x, 3)
    if layer.params.mode == 1:
        x = np.moveaxis(x, -3, -1)
    return np.reshape(x, x.shape[:-3] + (-1, 1, 1))


@NN_LAYERS.register("flattenTo2D")
def flatten_to_2d(layer: Layer, x: np.ndarray) -> np.ndarray:
    """[d0..dn] -> [prod(d0..d(axis-1)), prod(d(axis)..dn)]."""
    rank = x.ndim
    axis = int(layer.params.axis)
    if not -rank <= axis <= rank:
        raise layer.mismatch("axis", axis, f"-{rank}..{rank}")
    axis = axis + rank if axis < 0 else axis
    return np.reshape(x, (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))))


@NN_LAYERS.register("squeeze")
def squeeze(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Remove the size-1 axes listed (or all); a rank-1 result stays rank 1."""
    p = layer.params
    if p.squeezeAll:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(sorted({normalize_axis(layer, int(a), x.ndim) for a in p.axes}))
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise layer.mismatch(f"size of squeezed axes {bad}", [x.shape[a] for a in bad], "1")
    y = np.squeeze(x, axis=axes) if axes else x
    return y.reshape(1) if y.ndim == 0 else y


@NN_LAYERS.register("expandDims")
def expand_dims(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Insert size-1 axes at `axes` (positions in the output; negative counts from its end)."""
    axes = [int(a) for a in layer.params.axes]
    out_rank = x.ndim + len(axes)
    positions = sorted(normalize_axis(layer, a, out_rank) for a in axes)
    return np.expand_dims(x, tuple(positions))


@NN_LAYERS.register("transpose")
def transpose(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Permute axes: output.shape[i] = input.shape[axes[i]]."""
    axes = [int(a) for a in layer.params.axes]
    if sorted(axes) != list(range(x.ndim)):
        raise layer.mismatch("axes", axes, f"a permutation of 0..{x.ndim - 1} (input shape {list(x.shape)})")
    return np.transpose(x, axes)


@NN_LAYERS.register("permute")
def permute(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The old rank-5 permute of [Seq, C, H, W] (batch, axis 1, stays in place)."""
    axis = [int(a) for a in layer.params.axis] or [0, 1, 2, 3]
    if sorted(axis) != [0, 1, 2, 3]:
        raise layer.mismatch("axis", axis, "a permutation of [0, 1, 2, 3]")
    rank = np.ndim(x)
    x5 = _pad_rank5(np.asarray(x))
    positions = [0, 2, 3, 4]
    order = [positions[axis[0]], 1, positions[axis[1]], positions[axis[2]], positions[axis[3]]]
    y = np.transpose(x5, order)
    if rank < 5 and all(d == 1 for d in y.shape[: 5 - rank]):
        y = y.reshape(y.shape[5 - rank:])
    return y


@NN_LAYERS.register("reorganizeData")
def reorganize_data(layer: Layer, x: np.ndarray) -> np.ndarray:
    """SPACE_TO_DEPTH, DEPTH_TO_SPACE (depth ordered block-major) or PIXEL_SHUFFLE (channel-major)."""
    p = layer.params
    layer.need_rank(x, 3)
    b = int(p.blockSize)
    *lead, c, h, w = x.shape
    lead = tuple(lead)
    if p.mode == 0:
        if h % b or w % b:
            raise layer.mismatch("H, W", [h, w], f"multiples of blockSize {b}")
        y = x.reshape(lead + (c, h // b, b, w // b, b))
        n = len(lead)
        y = np.transpose(y, tuple(range(n)) + (n + 2, n + 4, n, n + 1, n + 3))
        return y.reshape(lead + (c * b * b, h // b, w // b))
    if c % (b * b):
        raise layer.mismatch("channels", c, f"a multiple of blockSize^2 = {b * b}")
    n = len(lead)
    if p.mode == 1:
        y = x.reshape(lead + (b, b, c // (b * b), h, w))
        y = np.transpose(y, tuple(range(n)) + (n + 2, n + 3, n, n + 4, n + 1))
    else:
        y = x.reshape(lead + (c // (b * b), b, b, h, w))
        y = np.transpose(y, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return y.reshape(lead + (c // (b * b), h * b, w * b))
