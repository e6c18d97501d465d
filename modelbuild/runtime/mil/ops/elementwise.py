"""Elementwise MIL ops: binary arithmetic/comparison/logic with broadcasting, unary math, cast, select.

Semantics of coremltools' `ops/defs/iOS15/elementwise_binary.py` and
`elementwise_unary.py` (numpy broadcasting; `log`, `rsqrt` and `inverse` add
their `epsilon` first).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..kernel import MIL_OPS, OpContext
from ._torch import half_tensors


def broadcast_shape(op: OpContext, **operands: Any) -> tuple[int, ...]:
    """The numpy broadcast of the operands' shapes, or a ShapeMismatchError naming the op."""
    try:
        return np.broadcast_shapes(*(np.shape(v) for v in operands.values()))
    except ValueError:
        raise op.shape_error("the inputs cannot be broadcast together", **operands) from None


def _binary(fn: Callable[[Any, Any], Any], on_half: Callable[..., torch.Tensor] | None) -> Callable[..., Any]:
    def kernel(op: OpContext, *, x: Any, y: Any) -> Any:
        broadcast_shape(op, x=x, y=y)
        if on_half is not None and (tensors := half_tensors(x, y)) is not None:
            return on_half(*tensors).numpy()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(np.asarray(x), np.asarray(y))

    kernel.__name__ = getattr(fn, "__name__", "binary")
    return kernel


def _real_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.true_divide(x, y)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": _real_div,
    "floor_div": np.floor_divide,
    "mod": np.mod,  # Python/numpy modulo: the result has the sign of y, as operator.mod
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
# fp16 operands of these ops run on torch: each element computed in fp32 and rounded, as numpy does
_HALF_ON_TORCH: dict[str, Callable[..., torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "real_div": torch.true_divide,
    "maximum": torch.maximum, "minimum": torch.minimum,
}
for _name, _fn in _BINARY.items():
    MIL_OPS.register(_name)(_binary(_fn, _HALF_ON_TORCH.get(_name)))


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.from_numpy(np.asarray(x, np.float64))).numpy()


_UNARY: dict[str, Callable[[np.ndarray], Any]] = {
    "abs": np.abs,
    "acos": np.arccos,
    "asin": np.arcsin,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "erf": _erf,
    "exp": np.exp,
    "exp2": np.exp2,
    "floor": np.floor,
    "logical_not": np.logical_not,
    "round": np.round,  # half to even, as numpy (and coremltools' value_inference)
    "sign": np.sign,
    "sin": np.sin,
    "sinh": np.sinh,
    "sqrt": np.sqrt,
    "square": np.square,
    "tan": np.tan,
    "tanh": np.tanh,
}


def _unary(fn: Callable[[np.ndarray], Any]) -> Callable[..., Any]:
    def kernel(op: OpContext, *, x: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(np.asarray(x))

    return kernel


for _name, _fn in _UNARY.items():
    MIL_OPS.register(_name)(_unary(_fn))


@MIL_OPS.register("log")
def log(op: OpContext, *, x: np.ndarray, epsilon: Any = 1e-45) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x + np.asarray(epsilon, x.dtype))


@MIL_OPS.register("rsqrt")
def rsqrt(op: OpContext, *, x: np.ndarray, epsilon: Any = 1e-12) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / np.sqrt(x.astype(np.float32) + np.float32(epsilon))


@MIL_OPS.register("inverse")
def inverse(op: OpContext, *, x: np.ndarray, epsilon: Any = 1e-4) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.reciprocal(x.astype(np.float32) + np.float32(epsilon))


@MIL_OPS.register("clip")
def clip(op: OpContext, *, x: np.ndarray, alpha: Any, beta: Any) -> np.ndarray:
    return np.minimum(np.maximum(x, alpha), beta)


@MIL_OPS.register("threshold")
def threshold(op: OpContext, *, x: np.ndarray, alpha: Any) -> np.ndarray:
    return np.maximum(x, alpha)


_CAST_TYPES = {
    "bool": np.bool_, "fp16": np.float16, "fp32": np.float32, "fp64": np.float64,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "int64": np.int64,
}


@MIL_OPS.register("cast")
def cast(op: OpContext, *, x: Any, dtype: str) -> np.ndarray:
    if dtype not in _CAST_TYPES:
        raise op.value_error(f"cannot cast to {dtype!r}; accepted: {', '.join(_CAST_TYPES)}")
    target = _CAST_TYPES[dtype]
    x = np.asarray(x)
    if np.issubdtype(target, np.integer) and np.issubdtype(x.dtype, np.floating):
        x = np.trunc(x)  # C-style conversion: toward zero
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(target)


@MIL_OPS.register("select")
def select(op: OpContext, *, cond: Any, a: Any, b: Any) -> np.ndarray:
    broadcast_shape(op, cond=cond, a=a, b=b)
    return np.where(np.asarray(cond).astype(bool), a, b)


@MIL_OPS.register("identity")
def identity(op: OpContext, *, x: Any) -> Any:
    return x


@MIL_OPS.register("const")
def const(op: OpContext, *, val: Any) -> Any:
    return val


