"""ONNX symbolics modelbuild adds to the TorchScript exporter, active only during modelbuild's exports.

- `aten::diff` (`torch.diff(x, n, dim, prepend, append)`): the exporter has none at any opset;
  transformers 5 calls it on `position_ids` to find packed sequences (GPT-2 and other decoders).
  Exported as Concat(prepend, x, append) then n times Slice[1:] - Slice[:-1] along `dim`.
- `aten::cumsum` on a bool tensor (transformers' `(position_diff != 1).cumsum(-1)`): the exporter
  writes CumSum on bool, which the ONNX standard and onnxruntime refuse; the input is cast to
  int64 first (PyTorch sums bools as int64), other dtypes keep the exporter's own symbolic.

`extra_symbolics(opset)` registers them with `torch.onnx.register_custom_op_symbolic` and
unregisters them when the block ends.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

_LAST = 2**63 - 1  # Slice's "to the end"


@contextlib.contextmanager
def extra_symbolics(opset: int) -> Iterator[None]:
    """Register modelbuild's symbolics for `opset` for the duration of the block."""
    import torch

    symbolics = {"aten::diff": _diff, "aten::cumsum": _cumsum}
    for name, symbolic in symbolics.items():
        torch.onnx.register_custom_op_symbolic(name, symbolic, opset)
    try:
        yield
    finally:
        for name in symbolics:
            torch.onnx.unregister_custom_op_symbolic(name, opset)


def _diff(g: Any, x: Any, n: Any, dim: Any, prepend: Any, append: Any) -> Any:
    """aten::diff(self, n=1, dim=-1, prepend=None, append=None)."""
    from torch.onnx import symbolic_helper

    count = symbolic_helper._get_const(n, "i", "n")
    axis = symbolic_helper._get_const(dim, "i", "dim")
    parts = [part for part in (prepend, x, append) if not symbolic_helper._is_none(part)]
    value = g.op("Concat", *parts, axis_i=axis) if len(parts) > 1 else x
    for _ in range(count):
        later = _slice(g, value, axis, 1, _LAST)
        earlier = _slice(g, value, axis, 0, -1)
        value = g.op("Sub", later, earlier)
    return value


def _cumsum(g: Any, x: Any, dim: Any, dtype: Any = None) -> Any:
    """aten::cumsum(self, dim, dtype): bools cast to int64 first, then the exporter's own CumSum."""
    import torch
    from torch.onnx import symbolic_helper, symbolic_opset11

    scalar = symbolic_helper._try_get_scalar_type(x)
    if scalar is not None and scalar.name == "BOOL":
        x = g.op("Cast", x, to_i=torch.onnx.TensorProtoDataType.INT64)
    return symbolic_opset11.cumsum(g, x, dim, dtype)


def _slice(g: Any, value: Any, axis: int, start: int, end: int) -> Any:
    import torch

    def const(number: int) -> Any:
        return g.op("Constant", value_t=torch.tensor([number], dtype=torch.int64))

    return g.op("Slice", value, const(start), const(end), const(axis))
