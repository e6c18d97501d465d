"""MIL control flow: cond (two branch blocks) and while_loop (a condition and a body block)."""
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
