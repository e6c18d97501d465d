"""iOS17 activation quantization: quantize and dequantize (coremltools `iOS17/quantization_ops.py`).

quantize: clip(round(input / scale) + zero_point) to int8 / uint8 (round half to even);
dequantize: (input - zero_point) * scale. A vector scale / zero_point applies along `axis`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext
from ..opsets import IOS17
from .constexpr import along_axis

_RANGES = {"int8": (-128, 127, np.int8), "uint8": (0, 255, np.uint8)}


@MIL_OPS.register("quantize", since=IOS17)
def quantize(
    op: OpContext, *, input: np.ndarray, scale: Any, output_dtype: str, zero_point: Any = None, axis: Any = None
) -> np.ndarray:
    if output_dtype not in _RANGES:
        raise op.value_error(f"output_dtype {output_dtype!r} is not one of {', '.join(_RANGES)}")
    low, high, dtype = _RANGES[output_dtype]
    data = input.astype(np.float32)
    axis_ = 0 if axis is None else axis
    scaled = np.rint(data / along_axis(op, scale, data, axis_, "scale").astype(np.float32))
    if zero_point is not None:
        scaled = scaled + along_axis(op, zero_point, data, axis_, "zero_point").astype(np.float32)
    return np.clip(scaled, low, high).astype(dtype)


@MIL_OPS.register("dequantize", since=IOS17)
def dequantize(op: OpContext, *, input: np.ndarray, scale: Any, zero_point: Any = None, axis: Any = None) -> np.ndarray:
    data = input.astype(np.float32)
    axis_ = 0 if axis is None else axis
    if zero_point is not None:
        data = data - along_axis(op, zero_point, data, axis_, "zero_point").astype(np.float32)
    return data * along_axis(op, scale, data, axis_, "scale").astype(np.float32)
