"""fp16 <-> fp32 conversion of arrays: numpy's `astype` bits, computed by torch when that is faster.

numpy converts float16 one element at a time on one thread; torch uses the CPU's
vector conversion instructions and its threads. Both round to nearest even,
overflow to inf and keep subnormals, so the values are the same (only NaN
payloads may differ: a NaN stays a NaN). `tests/runtime/mil/test_casting.py`
checks every fp16 value and fp32 values around every fp16 rounding boundary.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

_TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32}
# below this many elements numpy's own conversion costs less than handing the array to torch
_TORCH_FROM = 1 << 14


def astype(array: Any, dtype: Any) -> np.ndarray:
    """`np.asarray(array).astype(dtype, copy=False)`, through torch for large fp16 <-> fp32 arrays."""
    array = np.asarray(array)
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if (
        array.size >= _TORCH_FROM
        and array.dtype in _TORCH_DTYPES
        and dtype in _TORCH_DTYPES
        and array.flags.c_contiguous
        and array.flags.writeable  # torch.from_numpy warns on read-only memory
    ):
        return torch.from_numpy(array).to(_TORCH_DTYPES[dtype]).numpy()
    return array.astype(dtype)
