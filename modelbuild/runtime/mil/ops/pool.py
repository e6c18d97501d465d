"""MIL max_pool, avg_pool and l2_pool (coremltools `ops/defs/iOS15/pool.py`), on torch.

The output size follows Core ML (`spatial_dimensions_out_shape` in
coremltools): with ceil_mode the last window may start in the right padding
only if there is padding. The input is padded explicitly (custom / same /
same_lower amounts, then whatever ceil_mode adds at the end) and pooled
without further padding; padded positions never win a max and are left out
of an average when exclude_padding_from_average is set.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..kernel import MIL_OPS, OpContext
from ._torch import ints, spatial_padding, to_numpy, to_torch, torch_pad_arg

_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _pool_geometry(
    op: OpContext, x: np.ndarray, kernel_sizes: Any, strides: Any, pad_type: str, pad: Any, ceil_mode: Any
) -> tuple[list[int], list[int], list[tuple[int, int]], list[tuple[int, int]]]:
    """Kernel, strides, explicit padding and (explicit + ceil-mode) padding per spatial dim."""
    kernel = ints(kernel_sizes, 0, 1)
    spatial = len(kernel)
    if x.ndim != spatial + 2 or spatial not in _AVG:
        raise op.shape_error(f"x must have rank {spatial + 2} for a {spatial}-D kernel", x=x)
    strides_ = ints(strides, spatial, 1)
    explicit = spatial_padding(pad_type, pad, x.shape[2:], kernel, strides_, [1] * spatial)
    total = []
    for size, k, s, (before, after) in zip(x.shape[2:], kernel, strides_, explicit):
        span = size + before + after
        if span < k:
            raise op.shape_error(f"the (padded) input is smaller than the kernel {kernel}", x=x)
        if bool(ceil_mode):
            out = math.floor((span - k + s - 1) / s) + 1
            if (out - 1) * s >= size + before and (before > 0 or after > 0):
                out -= 1
        else:
            out = (span - k) // s + 1
        total.append((before, after + max(0, (out - 1) * s + k - span)))
    return kernel, strides_, explicit, total


@MIL_OPS.register("max_pool")
def max_pool(
    op: OpContext, *, x: np.ndarray, kernel_sizes: Any, strides: Any = None, pad_type: str = "valid",
    pad: Any = None, ceil_mode: Any = False,
) -> np.ndarray:
    kernel, strides_, _, total = _pool_geometry(op, x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    with torch.no_grad():
        padded = F.pad(to_torch(x), torch_pad_arg(total), value=-math.inf)
        return to_numpy(_MAX[len(kernel)](padded, kernel, strides_))


def _window_sums(x: torch.Tensor, kernel: list[int], strides: list[int]) -> torch.Tensor:
    return _AVG[len(kernel)](x, kernel, strides) * float(np.prod(kernel))


@MIL_OPS.register("avg_pool")
def avg_pool(
    op: OpContext, *, x: np.ndarray, kernel_sizes: Any, strides: Any = None, pad_type: str = "valid",
    pad: Any = None, exclude_padding_from_average: Any = False, ceil_mode: Any = False,
) -> np.ndarray:
    kernel, strides_, explicit, total = _pool_geometry(op, x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    with torch.no_grad():
        data = to_torch(x)
        sums = _window_sums(F.pad(data, torch_pad_arg(total)), kernel, strides_)
        # explicit padding counts unless excluded; the ceil-mode overhang never counts
        fill = 0.0 if bool(exclude_padding_from_average) else 1.0
        counted = F.pad(torch.ones((1, 1) + tuple(x.shape[2:])), torch_pad_arg(explicit), value=fill)
        overhang = [(0, t[1] - e[1]) for t, e in zip(total, explicit)]
        counted = F.pad(counted, torch_pad_arg(overhang))
        counts = _window_sums(counted, kernel, strides_)
        return to_numpy(sums / counts)


@MIL_OPS.register("l2_pool")
def l2_pool(
    op: OpContext, *, x: np.ndarray, kernel_sizes: Any, strides: Any = None, pad_type: str = "valid",
    pad: Any = None, ceil_mode: Any = False,
) -> np.ndarray:
    kernel, strides_, _, total = _pool_geometry(op, x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    with torch.no_grad():
        squares = F.pad(to_torch(x) ** 2, torch_pad_arg(total))
        return to_numpy(torch.sqrt(_window_sums(squares, kernel, strides_)))
