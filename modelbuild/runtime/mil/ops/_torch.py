"""Helpers shared by the kernels that run on torch (CPU, no autograd)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..casting import astype


def to_torch(x: Any) -> torch.Tensor:
    """A float32 (fp16 promoted) torch tensor sharing memory with `x` where possible."""
    return torch.from_numpy(np.ascontiguousarray(astype(x, np.float32)))


# numpy computes float16 arithmetic one element at a time; torch converts vectors to fp32, computes
# and rounds each element back (the same bits: tests/runtime/mil/test_elementwise.py), several
# times faster from this many elements on
_HALF_ON_TORCH_FROM = 1 << 14


def half_tensors(*values: Any) -> list[torch.Tensor] | None:
    """`values` as torch float16 tensors (sharing memory where torch can) when every one is a
    float16 array and one is large enough for torch to beat numpy; None otherwise."""
    arrays = [np.asarray(v) for v in values]
    if any(a.dtype != np.float16 for a in arrays) or max(a.size for a in arrays) < _HALF_ON_TORCH_FROM:
        return None
    return [torch.from_numpy(a if a.flags.writeable and min(a.strides, default=0) >= 0 else a.copy())
            for a in arrays]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def ints(value: Any, count: int, default: int) -> list[int]:
    """An int list of length `count` from an optional MIL int vector."""
    if value is None:
        return [default] * count
    return [int(v) for v in np.asarray(value).reshape(-1)]


def spatial_padding(
    pad_type: str, pad: Any, in_sizes: Sequence[int], kernel: Sequence[int],
    strides: Sequence[int], dilations: Sequence[int],
) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for pad_type valid / same / same_lower / custom."""
    n = len(in_sizes)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        values = ints(pad, 2 * n, 0)
        return [(values[2 * i], values[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        result = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            effective = (k - 1) * d + 1
            total = max(0, (math.ceil(size / s) - 1) * s + effective - size)
            small, large = total // 2, total - total // 2
            result.append((small, large) if pad_type == "same" else (large, small))
        return result
    raise ValueError(f"pad_type {pad_type!r} is not one of valid, same, same_lower, custom")


def torch_pad_arg(padding: Sequence[tuple[int, int]]) -> list[int]:
    """F.pad's argument (last dim first) from per-dim (before, after) pairs."""
    flat: list[int] = []
    for before, after in reversed(padding):
        flat += [before, after]
    return flat
