"""MIL reduce_* ops (coremltools `ops/defs/iOS15/reduction.py`), accumulated in fp32 or wider.

`axes` None reduces every dim; `keep_dims` keeps reduced dims as size 1.
reduce_argmax / reduce_argmin take a single `axis` (default -1).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..kernel import MIL_OPS, OpContext
from .reshaping import normalize_axes


def _accumulate(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _log_sum_exp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    peak = np.max(x, axis=axis, keepdims=True)
    total = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


_REDUCTIONS: dict[str, Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]] = {
    "reduce_sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "reduce_mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "reduce_max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduce_min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "reduce_prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "reduce_l1_norm": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "reduce_l2_norm": lambda x, a, k: np.sqrt(np.sum(np.square(x), axis=a, keepdims=k)),
    "reduce_sum_square": lambda x, a, k: np.sum(np.square(x), axis=a, keepdims=k),
    "reduce_log_sum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "reduce_log_sum_exp": _log_sum_exp,
}


def _reduction(fn: Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]) -> Callable[..., Any]:
    def kernel(op: OpContext, *, x: Any, axes: Any = None, keep_dims: Any = False) -> np.ndarray:
        data = _accumulate(x)
        chosen = tuple(range(data.ndim)) if axes is None else tuple(normalize_axes(op, axes, data.ndim))
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(data, chosen, bool(keep_dims))

    return kernel


for _name, _fn in _REDUCTIONS.items():
    MIL_OPS.register(_name)(_reduction(_fn))


def _arg(fn: Callable[..., np.ndarray]) -> Callable[..., Any]:
    def kernel(
        op: OpContext, *, x: Any, axis: Any = -1, keep_dims: Any = False, output_dtype: str = "int32"
    ) -> np.ndarray:
        x = np.asarray(x)
        ax = normalize_axes(op, axis, x.ndim)[0]
        return fn(x, axis=ax, keepdims=bool(keep_dims)).astype(np.int32)

    return kernel


MIL_OPS.register("reduce_argmax")(_arg(np.argmax))
MIL_OPS.register("reduce_argmin")(_arg(np.argmin))
