"""MIL linear, matmul and einsum (coremltools `ops/defs/iOS15/linear.py`), on torch."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..kernel import MIL_OPS, OpContext, variadic
from ..opsets import IOS18
from ._torch import to_numpy, to_torch


@MIL_OPS.register("linear")
def linear(op: OpContext, *, x: np.ndarray, weight: np.ndarray, bias: Any = None) -> np.ndarray:
    """x (*, D_in) @ weight (D_out, D_in).T + bias (D_out)."""
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise op.shape_error("the last dim of x must equal weight's second dim (D_in)", x=x, weight=weight)
    if bias is not None and np.asarray(bias).shape != (weight.shape[0],):
        raise op.shape_error(f"bias must have shape ({weight.shape[0]},)", bias=bias, weight=weight)
    with torch.no_grad():
        result = torch.nn.functional.linear(
            to_torch(x), op.prepared("weight", weight, to_torch),
            None if bias is None else op.prepared("bias", bias, to_torch),
        )
    return to_numpy(result)


@MIL_OPS.register("matmul")
def matmul(
    op: OpContext, *, x: np.ndarray, y: np.ndarray, transpose_x: Any = False, transpose_y: Any = False
) -> np.ndarray:
    """numpy matmul semantics (rank-1 operands, batch broadcasting) after optional transposes."""
    x, y = np.asarray(x), np.asarray(y)
    if bool(transpose_x) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if bool(transpose_y) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    inner_x = x.shape[-1]
    inner_y = y.shape[0] if y.ndim == 1 else y.shape[-2]
    try:
        if inner_x != inner_y:
            raise ValueError
        np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError:
        raise op.shape_error("the operands' inner or batch dims do not match", x=x, y=y) from None
    with torch.no_grad():
        return to_numpy(torch.matmul(to_torch(x), to_torch(y)))


@MIL_OPS.register("einsum")
@variadic("values")
def einsum(op: OpContext, *, values: list[np.ndarray], equation: str) -> np.ndarray:
    try:
        with torch.no_grad():
            return to_numpy(torch.einsum(str(equation), *(to_torch(v) for v in values)))
    except RuntimeError as error:
        raise op.shape_error(f"equation {equation!r} does not fit the inputs ({error})",
                             **{f"values[{i}]": v for i, v in enumerate(values)}) from None


@MIL_OPS.register("scaled_dot_product_attention", since=IOS18)
def scaled_dot_product_attention(
    op: OpContext, *, query: np.ndarray, key: np.ndarray, value: np.ndarray, attn_mask: Any = None
) -> np.ndarray:
    """softmax(Q K^T / sqrt(E) + mask) V; a bool mask keeps the True positions (others get -inf)."""
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise op.shape_error("query/key embedding sizes or key/value lengths differ", query=query, key=key, value=value)
    with torch.no_grad():
        q, k, v = to_torch(query), to_torch(key), to_torch(value)
        scores = torch.matmul(q, k.transpose(-1, -2)) / float(np.sqrt(query.shape[-1]))
        if attn_mask is not None:
            mask = np.asarray(attn_mask)
            scores = scores + (torch.from_numpy(np.where(mask, 0.0, -np.inf).astype(np.float32))
                               if mask.dtype == np.bool_ else to_torch(mask))
        return to_numpy(torch.matmul(torch.softmax(scores, dim=-1), v))
