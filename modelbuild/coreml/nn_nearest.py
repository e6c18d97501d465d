"""Nearest-neighbour resizing by a fractional factor, kept exact in a NeuralNetwork.

coremltools 9's NeuralNetwork backend has no fractional nearest upsample: for
`upsample_nearest_neighbor` / `resize_nearest_neighbor` with a non-integer factor (F.interpolate
(size=(12, 12), mode='nearest') on 8x8, or an ONNX Resize to that size) it logs a warning and
writes a BILINEAR align-corners upsample instead, so the model converts and computes other
numbers (measured: row 0 of an 8->12 arange became 0, 0.64, 1.27, ... instead of 0, 0, 1, 2, ...).
`exact_fractional_nearest(program)` replaces such ops, whose sizes are static, with two gathers
of constant indices: output i reads input floor(i * in / out), the ops' own definition (and
PyTorch's 'nearest').
"""
from __future__ import annotations

from typing import Any

from modelbuild.coreml.conversion_log import note
from modelbuild.coreml.program_edits import edit_scopes

_NEAREST_OPS = ("upsample_nearest_neighbor", "resize_nearest_neighbor")


def exact_fractional_nearest(program: Any) -> int:
    """Rewrite the program's fractional nearest resizes as gathers; return how many were rewritten."""
    from coremltools.converters.mil.mil.types.symbolic import any_symbolic

    rewritten = 0
    for function in program.functions.values():
        for op in list(function.operations):
            if op.op_type not in _NEAREST_OPS:
                continue
            size_in, size_out = op.x.shape[-2:], op.outputs[0].shape[-2:]
            if any_symbolic(size_in) or any_symbolic(size_out):
                continue
            if all(int(o) % int(i) == 0 for i, o in zip(size_in, size_out)):
                continue  # integer factors: the NeuralNetwork upsample layer is exact
            _gather_instead(function, op, [int(s) for s in size_in], [int(s) for s in size_out])
            note(f"rewrote {op.op_type} {op.name!r} ({size_in[0]}x{size_in[1]} -> {size_out[0]}x{size_out[1]}) as "
                 "gathers: coremltools' NeuralNetwork backend would make it a bilinear upsample")
            rewritten += 1
    return rewritten


def _gather_instead(function: Any, op: Any, size_in: list[int], size_out: list[int]) -> None:
    import numpy as np
    from coremltools.converters.mil.mil import Builder as mb

    x, output = op.x, op.outputs[0]
    name = output.name
    with function, mb.scope(*edit_scopes(function, "modelbuild_exact_nearest")):
        rows, columns = (np.minimum(np.floor(np.arange(o) * (i / o)), i - 1).astype(np.int32)
                         for i, o in zip(size_in, size_out))
        picked_rows = mb.gather(x=x, indices=rows, axis=x.rank - 2, before_op=op)
        result = mb.gather(x=picked_rows, indices=columns, axis=x.rank - 1, before_op=op)
        function.replace_uses_of_var_after_op(anchor_op=op, old_var=output, new_var=result)
        function.remove_ops([op])
    result.name = name
    result.op.name = name
