"""`onnx::broadcast_where_branches`: give Where's two value inputs the full result shape.

coremltools 9 infers the type of MIL `select` (what onnx2coreml lowers Where to) from its two
value inputs only: `Where(mask: bool[1,1,16,16], 0.0, -3.4e38)` is declared a scalar although it
computes a [1,1,16,16] tensor, and every op after it is typed from that (transformers 5's BERT
attention mask, '/bert/Where_1'). With both value inputs broadcast to the result's shape first the
declared type is right; the values are the same.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from modelbuild.surgery import onnx_graph
from modelbuild.surgery.coreml_spec import fresh_name  # the same naming rule for both formats
from modelbuild.surgery.registry import ONNX_STEPS, SurgeryError, SurgeryStep

if TYPE_CHECKING:
    import onnx


def narrow_where_nodes(model: onnx.ModelProto) -> list[tuple[Any, tuple[int, ...]]]:
    """(node, result shape) for each main-graph Where whose condition is larger than its two values broadcast."""
    import numpy as np

    shapes = _shapes(model)
    found = []
    for node in model.graph.node:
        if node.op_type != "Where" or node.domain not in ("", "ai.onnx"):
            continue
        cond, a, b = (shapes.get(name) for name in node.input)
        if cond is None or a is None or b is None:
            continue
        values = np.broadcast_shapes(a, b)
        result = np.broadcast_shapes(cond, values)
        if tuple(values) != tuple(result):
            found.append((node, tuple(int(d) for d in result)))
    return found


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shapes from onnx shape inference, plus those of initializers and Constant outputs."""
    import numpy as np

    shapes = onnx_graph.static_shapes(model)
    producer_of = onnx_graph.producers(model.graph)
    constants = [t.name for t in model.graph.initializer] + [
        node.output[0] for node in model.graph.node if node.op_type == "Constant"]
    for name in constants:
        if name not in shapes:
            value = onnx_graph.constant_value(model.graph, name, producer_of)
            if value is not None:
                shapes[name] = tuple(np.shape(value))
    return shapes


def where_shapes_known(model: onnx.ModelProto) -> bool:
    """Is the shape of every input of every main-graph Where static?"""
    shapes = _shapes(model)
    return all(name in shapes for node in model.graph.node if node.op_type == "Where" for name in node.input)


@ONNX_STEPS.register
class BroadcastWhereBranches(SurgeryStep):
    """Expand Where's value inputs to the result's shape when only the condition has it.

    Given: y = Where(mask: bool[1, 1, 16, 16], zero: float[], low: float[])      (y: float[1, 1, 16, 16])
    Result: y = Where(mask, zero16: float[1, 1, 16, 16], low16: float[1, 1, 16, 16])
    A constant value input becomes a constant of the full shape; another one is Expanded to it.
    Needs the shapes to be static (as onnx2coreml converts them).
    """

    step: Literal["onnx::broadcast_where_branches"] = "onnx::broadcast_where_branches"

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import numpy as np
        import onnx
        from onnx import numpy_helper

        model = onnx_graph.copy_model(model)
        found = narrow_where_nodes(model)
        if not found:
            raise SurgeryError("onnx::broadcast_where_branches found no Where whose condition has a larger (static) "
                               "shape than its two value inputs.")
        graph = model.graph
        producer_of = onnx_graph.producers(graph)
        taken = onnx_graph.value_names(graph)
        for node, shape in found:
            base = node.name or node.output[0]
            for position in (1, 2):
                name = fresh_name(taken, f"{base}_input{position}_broadcast")
                value = onnx_graph.constant_value(graph, node.input[position], producer_of)
                if value is not None:
                    graph.initializer.append(numpy_helper.from_array(
                        np.ascontiguousarray(np.broadcast_to(value, shape)), name))
                else:
                    target = fresh_name(taken, f"{name}_shape")
                    graph.initializer.append(numpy_helper.from_array(np.array(shape, np.int64), target))
                    graph.node.insert(list(graph.node).index(node), onnx.helper.make_node(
                        "Expand", [node.input[position], target], [name], name=name))
                node.input[position] = name
        onnx_graph.remove_dead_nodes(graph)
        onnx.checker.check_model(model)
        return model

