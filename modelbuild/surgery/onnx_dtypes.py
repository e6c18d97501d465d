"""ONNX steps that change the element type a node computes in, for converters that lack the original one.

`onnx::bool_as_int32`: onnx2coreml 1.1.0 lowers Gather, GatherElements, ScatterElements, Equal,
Max, ReduceMax (and their kin) to MIL ops that take no bool tensors. transformers 5 gathers from a
bool padding mask when it builds the attention mask from an `attention_mask` input (BERT:
'/bert/Gather_1' on tensor[16,1,bool]). On 0/1 values these ops compute the same in int32, so
the bool inputs are cast to int32 and a bool result is cast back.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from modelbuild.surgery import onnx_graph
from modelbuild.surgery.coreml_spec import fresh_name  # the same naming rule for both formats
from modelbuild.surgery.registry import ONNX_STEPS, SurgeryError, SurgeryStep

if TYPE_CHECKING:
    import onnx

ALL_INPUTS = None
# op type -> positions of the inputs that carry data (None: every input); indices stay as they are
DATA_INPUTS: dict[str, tuple[int, ...] | None] = {
    "Gather": (0,), "GatherElements": (0,), "GatherND": (0,), "ScatterElements": (0, 2), "ScatterND": (0, 2),
    "Max": ALL_INPUTS, "Min": ALL_INPUTS, "ReduceMax": (0,), "ReduceMin": (0,), "Equal": ALL_INPUTS,
}
_BOOL_RESULT_ANYWAY = {"Equal"}  # its result is bool whatever it compares: nothing to cast back


def element_types(model: onnx.ModelProto) -> dict[str, int]:
    """Value name -> onnx.TensorProto element type, for every value onnx type inference knows."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {t.name: int(t.data_type) for t in graph.initializer}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = int(value.type.tensor_type.elem_type)
    for node in graph.node:  # Constant outputs are not always in value_info
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.HasField("t"):
                    types[node.output[0]] = int(attribute.t.data_type)
    return types


def bool_data_nodes(model: onnx.ModelProto) -> list[tuple[Any, list[int]]]:
    """(node, positions of its bool data inputs) for the main graph's nodes that `onnx::bool_as_int32` rewrites."""
    import onnx

    types = element_types(model)
    found = []
    for node in model.graph.node:
        if node.op_type not in DATA_INPUTS or node.domain not in ("", "ai.onnx"):
            continue
        positions = DATA_INPUTS[node.op_type]
        candidates = range(len(node.input)) if positions is ALL_INPUTS else positions
        bools = [i for i in candidates if i < len(node.input) and types.get(node.input[i]) == onnx.TensorProto.BOOL]
        if bools:
            found.append((node, bools))
    return found


@ONNX_STEPS.register
class BoolAsInt32(SurgeryStep):
    """Compute data-moving and comparing ops on bool tensors in int32, and cast a bool result back.

    Given: y = Gather(mask: bool[16, 1], indices, axis=0)
    Result: m = Cast(mask, to=INT32); g = Gather(m, indices, axis=0); y = Cast(g, to=BOOL)
    Also GatherElements, GatherND, ScatterElements and ScatterND (data and updates), Max, Min,
    ReduceMax, ReduceMin, and Equal (whose result needs no cast back). For converters whose ops
    take no bool tensors (onnx2coreml 1.1.0); on 0/1 values the results are exactly the same.
    """

    step: Literal["onnx::bool_as_int32"] = "onnx::bool_as_int32"

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import onnx

        model = onnx_graph.copy_model(model)
        found = bool_data_nodes(model)
        if not found:
            raise SurgeryError(f"onnx::bool_as_int32 found no {', '.join(DATA_INPUTS)} node with a bool data input.")
        graph = model.graph
        taken = onnx_graph.value_names(graph)
        for node, positions in found:
            index = list(graph.node).index(node)
            base = node.name or node.output[0]
            for position in positions:
                as_int = fresh_name(taken, f"{base}_input{position}_int32")
                graph.node.insert(index, onnx.helper.make_node("Cast", [node.input[position]], [as_int], name=as_int,
                                                               to=onnx.TensorProto.INT32))
                node.input[position] = as_int
                index += 1
            if node.op_type not in _BOOL_RESULT_ANYWAY:
                computed = fresh_name(taken, f"{base}_int32")
                graph.node.insert(index + 1, onnx.helper.make_node("Cast", [computed], [node.output[0]],
                                                                   name=f"{base}_to_bool", to=onnx.TensorProto.BOOL))
                node.output[0] = computed
        onnx.checker.check_model(model)
        return model

