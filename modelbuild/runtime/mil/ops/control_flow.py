"""MIL control flow: cond, while_loop, and the lists that loops carry (make_list, list_read, ...)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext, variadic

MAX_LOOP_ITERATIONS = 1_000_000


def _single(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else tuple(values)


@MIL_OPS.register("cond")
def cond(op: OpContext, *, pred: Any) -> Any:
    """Run blocks[0] if pred else blocks[1]; the outputs are the branch's outputs."""
    if len(op.blocks) != 2:
        raise op.value_error(f"cond needs a true and a false block, not {len(op.blocks)}")
    return _single(op.run_block(0 if bool(np.asarray(pred)) else 1))


@MIL_OPS.register("while_loop")
@variadic("loop_vars")
def while_loop(op: OpContext, *, loop_vars: list[Any]) -> Any:
    """While blocks[0](vars) holds, vars = blocks[1](vars); the outputs are the final vars."""
    if len(op.blocks) != 2:
        raise op.value_error(f"while_loop needs a condition and a body block, not {len(op.blocks)}")
    values = list(loop_vars)
    for _ in range(MAX_LOOP_ITERATIONS):
        if not bool(np.asarray(op.run_block(0, values)[0])):
            return _single(values)
        values = op.run_block(1, values)
    raise op.value_error(f"the loop did not end after {MAX_LOOP_ITERATIONS} iterations")


class TensorList:
    """A MIL list: tensors of one element type, growing on write when its length is dynamic."""

    def __init__(self, items: list[np.ndarray | None], elem_shape: tuple[int, ...] | None, dtype: np.dtype,
                 dynamic: bool) -> None:
        self.items, self.elem_shape, self.dtype, self.dynamic = items, elem_shape, dtype, dynamic

    def read(self, op: OpContext, index: int) -> np.ndarray:
        if not 0 <= index < len(self.items):
            raise op.value_error(f"list index {index} is out of range for a list of length {len(self.items)}")
        item = self.items[index]
        if item is None:
            if self.elem_shape is None:
                raise op.value_error(f"list element {index} was never written and the element shape is not fixed")
            return np.zeros(self.elem_shape, self.dtype)
        return item

    def written(self, op: OpContext, index: int, value: Any) -> TensorList:
        """A new list with value at index (lists are values: the input list stays as it was)."""
        items = list(self.items)
        if index >= len(items):
            if not self.dynamic:
                raise op.value_error(f"index {index} is past the fixed list length {len(items)}")
            items += [None] * (index + 1 - len(items))
        if index < 0:
            raise op.value_error(f"list index {index} is negative")
        items[index] = np.asarray(value, self.dtype)
        return TensorList(items, self.elem_shape, self.dtype, self.dynamic)


_LIST_DTYPES = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "bool": np.bool_}


@MIL_OPS.register("make_list")
@variadic("elem_shape")
def make_list(op: OpContext, *, elem_shape: list[Any], init_length: Any = 1, dynamic_length: Any = True,
              dtype: str = "fp32") -> TensorList:
    if dtype not in _LIST_DTYPES:
        raise op.value_error(f"list dtype {dtype!r} is not one of {', '.join(_LIST_DTYPES)}")
    dims = [d.item() if isinstance(d, np.ndarray) else d for d in elem_shape]
    fixed = None if any(isinstance(d, str) for d in dims) else tuple(int(d) for d in dims)
    return TensorList([None] * int(init_length), fixed, np.dtype(_LIST_DTYPES[dtype]), bool(dynamic_length))


@MIL_OPS.register("list_length")
def list_length(op: OpContext, *, ls: TensorList) -> np.ndarray:
    return np.int32(len(ls.items))


@MIL_OPS.register("list_write")
def list_write(op: OpContext, *, ls: TensorList, index: Any, value: Any) -> TensorList:
    return ls.written(op, int(index), value)


@MIL_OPS.register("list_read")
def list_read(op: OpContext, *, ls: TensorList, index: Any) -> np.ndarray:
    return ls.read(op, int(index))


@MIL_OPS.register("list_gather")
def list_gather(op: OpContext, *, ls: TensorList, indices: Any) -> np.ndarray:
    return np.stack([ls.read(op, int(i)) for i in np.asarray(indices).reshape(-1)])


@MIL_OPS.register("list_scatter")
def list_scatter(op: OpContext, *, ls: TensorList, indices: Any, value: Any) -> TensorList:
    result = ls
    for i, item in zip(np.asarray(indices).reshape(-1), np.asarray(value)):
        result = result.written(op, int(i), item)
    return result
