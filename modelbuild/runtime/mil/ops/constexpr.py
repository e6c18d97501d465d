"""Weight decompression ops (`constexpr_*`) that `coremltools.optimize.coreml` emits.

iOS16 (`ops/defs/iOS16/constexpr_ops.py`): constexpr_affine_dequantize,
constexpr_cast, constexpr_lut_to_dense and constexpr_sparse_to_dense with
bit-packed uint8 indices / masks and an explicit `shape`.
iOS18 (`ops/defs/iOS18/compression.py`): constexpr_blockwise_shift_scale,
constexpr_lut_to_dense (per-block palettes, optional vector palettes),
constexpr_sparse_to_dense with a uint1 mask, and the two-output
constexpr_lut_to_sparse / constexpr_sparse_blockwise_shift_scale.
constexpr_lut_to_dense and constexpr_sparse_to_dense have one kernel per
opset: an iOS18 program's ops take the iOS18 forms.
The program evaluates these ops once, at load time.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext
from ..opsets import IOS16, IOS18
from .reshaping import int_list

_CAST_TYPES = {"fp16": np.float16, "fp32": np.float32}


def unpack_bits(packed: Any, nbits: int, count: int) -> np.ndarray:
    """`count` unsigned nbits-wide values packed from the least significant bit of uint8 bytes."""
    bits = np.unpackbits(np.asarray(packed, np.uint8).reshape(-1), bitorder="little")[: count * nbits]
    return bits.reshape(count, nbits).astype(np.int64) @ (1 << np.arange(nbits, dtype=np.int64))


def repeat_blocks(op: OpContext, data: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Repeat each element of `data` over its block so that it takes `shape` (block-wise params)."""
    if data.ndim != len(shape) or any(s % d for d, s in zip(data.shape, shape)):
        raise op.shape_error(f"the shape of {name} must divide the data shape {shape} dim by dim", **{name: data})
    for axis, (d, s) in enumerate(zip(data.shape, shape)):
        if d != s:
            data = np.repeat(data, s // d, axis=axis)
    return data


def along_axis(op: OpContext, param: Any, data: np.ndarray, axis: Any, name: str) -> np.ndarray:
    """A scalar or a per-slice vector along `axis`, broadcastable against `data`."""
    param = np.asarray(param)
    if param.ndim == 0:
        return param
    ax = int(axis) % data.ndim
    if param.ndim != 1 or param.size != data.shape[ax]:
        raise op.shape_error(f"{name} must be a scalar or hold {data.shape[ax]} values (axis {ax})",
                             **{name: param, "data": data})
    shape = [1] * data.ndim
    shape[ax] = -1
    return param.reshape(shape)


@MIL_OPS.register("constexpr_affine_dequantize", since=IOS16)
def constexpr_affine_dequantize(
    op: OpContext, *, quantized_data: np.ndarray, zero_point: Any, scale: Any, axis: Any
) -> np.ndarray:
    data = quantized_data.astype(np.float32)
    zero = along_axis(op, zero_point, data, axis, "zero_point").astype(np.float32)
    return (data - zero) * along_axis(op, scale, data, axis, "scale").astype(np.float32)


@MIL_OPS.register("constexpr_cast", since=IOS16)
def constexpr_cast(op: OpContext, *, source_val: np.ndarray, output_dtype: str) -> np.ndarray:
    if output_dtype not in _CAST_TYPES:
        raise op.value_error(f"output_dtype {output_dtype!r} is not one of {', '.join(_CAST_TYPES)}")
    return source_val.astype(_CAST_TYPES[output_dtype])


@MIL_OPS.register("constexpr_blockwise_shift_scale", since=IOS18)
def constexpr_blockwise_shift_scale(
    op: OpContext, *, data: np.ndarray, scale: np.ndarray, offset: Any = None
) -> np.ndarray:
    values = data.astype(np.float32)
    if offset is not None:
        values = values - repeat_blocks(op, np.asarray(offset, np.float32), data.shape, "offset")
    return values * repeat_blocks(op, scale.astype(np.float32), data.shape, "scale")


@MIL_OPS.register("constexpr_lut_to_dense", since=IOS16)
def constexpr_lut_to_dense(op: OpContext, *, indices: np.ndarray, lut: np.ndarray, shape: Any) -> np.ndarray:
    """iOS16: one palette of 2^nbits entries, indices bit-packed in uint8."""
    dims = int_list(shape)
    nbits = int(np.log2(lut.size))
    if 2**nbits != lut.size:
        raise op.shape_error("the lut must hold 2^nbits entries", lut=lut)
    return lut.reshape(-1)[unpack_bits(indices, nbits, int(np.prod(dims)))].reshape(dims)


@MIL_OPS.register("constexpr_lut_to_dense", since=IOS18)
def constexpr_lut_to_dense_ios18(
    op: OpContext, *, indices: np.ndarray, lut: np.ndarray, vector_axis: Any = None
) -> np.ndarray:
    """iOS18 palettes: lut (*blocks, palette, vector) indexed by indices (*shape)."""
    if lut.ndim != indices.ndim + 2:
        raise op.shape_error("lut must have rank(indices) + 2 dims (*blocks, palette, vector)",
                             indices=indices, lut=lut)
    palettes = repeat_blocks(op, lut, indices.shape + lut.shape[-2:], "lut")
    chosen = np.take_along_axis(palettes, indices.astype(np.int64)[..., None, None], axis=-2)[..., 0, :]
    vector = lut.shape[-1]
    if vector == 1:
        return chosen[..., 0]
    ax = int(vector_axis) % indices.ndim
    moved = np.moveaxis(chosen, -1, ax + 1)  # (..., n, vector, ...) -> (..., n * vector, ...)
    shape = list(indices.shape)
    shape[ax] *= vector
    return moved.reshape(shape)


@MIL_OPS.register("constexpr_sparse_to_dense", since=IOS16)
def constexpr_sparse_to_dense(op: OpContext, *, nonzero_data: np.ndarray, mask: np.ndarray, shape: Any) -> np.ndarray:
    """iOS16: the mask bit-packed in uint8, the dense shape given."""
    dims = int_list(shape)
    bits = unpack_bits(mask, 1, int(np.prod(dims))).reshape(dims)
    return constexpr_sparse_to_dense_ios18(op, nonzero_data=nonzero_data, mask=bits)


@MIL_OPS.register("constexpr_sparse_to_dense", since=IOS18)
def constexpr_sparse_to_dense_ios18(op: OpContext, *, nonzero_data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """iOS18: a uint1 mask of the dense shape; the non-zero values fill its ones in order."""
    keep = mask != 0
    if int(keep.sum()) != nonzero_data.size:
        raise op.shape_error(f"the mask has {int(keep.sum())} ones for {nonzero_data.size} values",
                             nonzero_data=nonzero_data, mask=mask)
    dense = np.zeros(mask.shape, nonzero_data.dtype)
    dense[keep] = nonzero_data.reshape(-1)
    return dense


@MIL_OPS.register("constexpr_lut_to_sparse", since=IOS18)
def constexpr_lut_to_sparse(
    op: OpContext, *, indices_mask: np.ndarray, indices_nonzero_data: np.ndarray, lut: np.ndarray,
    vector_axis: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    indices = constexpr_sparse_to_dense_ios18(op, nonzero_data=indices_nonzero_data, mask=indices_mask)
    dense = constexpr_lut_to_dense_ios18(op, indices=indices, lut=lut, vector_axis=vector_axis)
    mask = indices_mask
    if lut.shape[-1] > 1:
        mask = np.repeat(mask, lut.shape[-1], axis=int(vector_axis) % mask.ndim)
    return mask, dense[mask != 0].reshape(-1)


@MIL_OPS.register("constexpr_sparse_blockwise_shift_scale", since=IOS18)
def constexpr_sparse_blockwise_shift_scale(
    op: OpContext, *, data_mask: np.ndarray, nonzero_data: np.ndarray, scale: np.ndarray, offset: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    data = constexpr_sparse_to_dense_ios18(op, nonzero_data=nonzero_data, mask=data_mask)
    dense = constexpr_blockwise_shift_scale(op, data=data, scale=scale, offset=offset)
    return data_mask, dense[data_mask != 0].reshape(-1)
