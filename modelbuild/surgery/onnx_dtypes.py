"""ONNX steps that change the element type a node computes in, for converters that lack the original one.

`onnx::gather_bool_as_int32`: onnx2coreml 1.1.0 lowers Gather to MIL `gather`, which takes fp16,
fp32 and int32 data but not bool. transformers 5 gathers from a bool padding mask when it builds
the attention mask from an `attention_mask` input (BERT: '/bert/Gather_1' on tensor[16,1,bool]).
Gathering the int32 copy and casting back computes the same values.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from modelbuild.surgery import onnx_graph
from modelbuild.surgery.registry import ONNX_STEPS, SurgeryError, SurgeryStep

if TYPE_CHECKING:
    import onnx


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


def bool_gathers(model: onnx.ModelProto) -> list[Any]:
    """The Gather nodes of the main graph whose data input is bool."""
    import onnx

    types = element_types(model)
    return [node for node in model.graph.node
            if node.op_type == "Gather" and node.domain in ("", "ai.onnx")
            and types.get(node.input[0]) == onnx.TensorProto.BOOL]


@ONNX_STEPS.register
class GatherBoolAsInt32(SurgeryStep):
    """Gather bool data as int32 and cast the result back to bool.

    Given: y = Gather(mask: bool[16, 1], indices, axis=0)
    Result: m = Cast(mask, to=INT32); g = Gather(m, indices, axis=0); y = Cast(g, to=BOOL)
    For converters whose gather takes no bool data (onnx2coreml 1.1.0: fp16, fp32, int32); the
    values are exactly the same.
    """

    step: Literal["onnx::gather_bool_as_int32"] = "onnx::gather_bool_as_int32"

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import onnx

        model = onnx_graph.copy_model(model)
        gathers = bool_gathers(model)
        if not gathers:
            raise SurgeryError("onnx::gather_bool_as_int32 found no Gather whose data input is bool.")
        graph = model.graph
        taken = onnx_graph.value_names(graph)
        for node in gathers:
            index = list(graph.node).index(node)
            base = node.name or node.output[0]
            as_int, gathered = _fresh(f"{base}_data_int32", taken), _fresh(f"{base}_int32", taken)
            to_int = onnx.helper.make_node("Cast", [node.input[0]], [as_int], name=as_int, to=onnx.TensorProto.INT32)
            back = onnx.helper.make_node("Cast", [gathered], [node.output[0]], name=f"{base}_to_bool",
                                         to=onnx.TensorProto.BOOL)
            node.input[0], node.output[0] = as_int, gathered
            graph.node.insert(index, to_int)
            graph.node.insert(index + 2, back)
        onnx.checker.check_model(model)
        return model


def _fresh(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.add(candidate)
    return candidate
