"""Capture a torch model with torch.export for coremltools 9's torch frontend (`capture: export`).

`capture` runs `torch.export.export` on ones of the declared default shapes, with a
`torch.export.Dim` per flexible dimension (a Range's [min, max]; for Enumerated shapes the
smallest and largest size), then `.run_decompositions({})`, and makes two edits of the graph
that coremltools 9 needs:

Given: s = sym_size(x, 2); c = eq(s, ...); n = sym_not(c); _assert_scalar(n, "...")
       h = floordiv(add(1, s), 2); e = sym_min(s, mul(2, h)); y = slice(x, 2, 0, e)
Result: h = int(floordiv(add(1, s), 2)); e = minimum(s, mul(2, h)); y = slice(x, 2, 0, e)

- Runtime asserts (`_assert_scalar`, the guards torch could not prove for the whole declared
  range) and the size arithmetic that only feeds them are removed: coremltools treats the
  asserts as no-ops but cannot convert their conditions (`sym_not`). What the asserts would
  have checked, validation checks at every declared shape.
- Integer floor division of sizes (`operator.floordiv`, e.g. `h // 2`) is cast back to an
  integer: coremltools converts it like torch.floor_divide on tensors, to float32, which
  `slice` cannot take as a bound. TorchScript's trace records the same cast (`aten::Int`).
- `sym_min` / `sym_max` of sizes (size-oblivious slicing, see modelbuild.torch_export) become
  calls of `minimum` / `maximum` below, which coremltools converts by name.
"""
from __future__ import annotations

import operator
from typing import Any

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.features import FeatureSpec, example_tensors
from modelbuild.coreml.flexible import Enumerated, Range
from modelbuild.torch_export import Bounds, TorchExportError, export_program, span


def capture(torch_model: Any, inputs: list[FeatureSpec]) -> Any:
    """The model as an ExportedProgram coremltools converts, flexible where the inputs say."""
    import torch

    examples = example_tensors(inputs)
    try:
        program = export_program(torch_model, examples, [f.name for f in inputs], [bounds(f) for f in inputs])
    except TorchExportError as exc:
        raise CoreMLBuildError(str(exc)) from exc
    drop_runtime_asserts(program.graph_module.graph)
    convertible_size_arithmetic(program.graph_module.graph)
    program.graph_module.recompile()
    return program


def bounds(feature: FeatureSpec) -> Bounds:
    """torch.export bounds of a feature's flexible dimensions (max None: unbounded)."""
    flexible = feature.flexible
    if isinstance(flexible, Range):
        return {d: (dim[0], None if dim[1] == -1 else dim[1])
                for d, dim in enumerate(flexible.dim_ranges) if dim is not None}
    if isinstance(flexible, Enumerated):
        return span([tuple(feature.shape), *flexible.shapes])
    return {}


def drop_runtime_asserts(graph: Any) -> None:
    """Remove `_assert_scalar` nodes, then every node left unused (the size arithmetic of their conditions)."""
    import torch

    for node in list(graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.aten._assert_scalar.default:
            graph.erase_node(node)
    graph.eliminate_dead_code()


def minimum(a: int, b: int) -> int:
    """The smaller of two sizes (coremltools converts a call of a function of this name to `minimum`)."""
    return min(a, b)


def maximum(a: int, b: int) -> int:
    """The larger of two sizes (coremltools converts a call of a function of this name to `maximum`)."""
    return max(a, b)


def convertible_size_arithmetic(graph: Any) -> None:
    """Integer `operator.floordiv` followed by `int(...)` (an int32 cast for coremltools); `sym_min` / `sym_max`
    replaced by `minimum` / `maximum`."""
    import torch

    renamed = {torch.sym_min: minimum, torch.sym_max: maximum}
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target in renamed:
            node.target = renamed[node.target]
        elif node.target is operator.floordiv and isinstance(node.meta.get("val"), (int, torch.SymInt)):
            with graph.inserting_after(node):
                cast = graph.call_function(int, (node,))
            cast.meta["val"] = node.meta["val"]
            node.replace_all_uses_with(cast, delete_user_cb=lambda user: user is not cast)
