"""ONNX surgery steps: rename inputs/outputs, change the opset, shape-computed reshape -> Flatten.

Each step takes an onnx.ModelProto and returns an edited copy (the input model
is left as it was). Constant folding lives in `onnx_folding`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from modelbuild.surgery import onnx_graph
from modelbuild.surgery.registry import ONNX_STEPS, SurgeryError, SurgeryStep

if TYPE_CHECKING:
    import onnx

_NAMES_FIELD = "old name -> new name; names not listed keep theirs"


@ONNX_STEPS.register
class RenameInputs(SurgeryStep):
    """Rename graph inputs (and every node that reads them).

    Given: graph(x.1: float[1,3,H,W]) { %1 = Conv(x.1, W) ... }
    Result: graph(image: float[1,3,H,W]) { %1 = Conv(image, W) ... }   with names={"x.1": "image"}
    """

    step: Literal["onnx::rename_inputs"] = "onnx::rename_inputs"
    names: dict[str, str] = Field(description=f"Inputs to rename: {_NAMES_FIELD}.", min_length=1)

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        model = onnx_graph.copy_model(model)
        initializers = {t.name for t in model.graph.initializer}
        inputs = [v.name for v in model.graph.input if v.name not in initializers]
        onnx_graph.rename_many(model.graph, self.names, inputs, "input")
        return model


@ONNX_STEPS.register
class RenameOutputs(SurgeryStep):
    """Rename graph outputs (the producing node's output and every reader of it).

    Given: graph(...) -> (%495: float[1,1000]) { %495 = Gemm(%494, W, b) }
    Result: graph(...) -> (logits: float[1,1000]) { logits = Gemm(%494, W, b) }   with names={"495": "logits"}
    """

    step: Literal["onnx::rename_outputs"] = "onnx::rename_outputs"
    names: dict[str, str] = Field(description=f"Outputs to rename: {_NAMES_FIELD}.", min_length=1)

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        model = onnx_graph.copy_model(model)
        inputs = {v.name for v in model.graph.input}
        passthrough = [old for old in self.names if old in inputs]
        if passthrough:
            raise SurgeryError(
                f"Outputs {passthrough} are also graph inputs; rename them with onnx::rename_inputs."
            )
        onnx_graph.rename_many(model.graph, self.names, [v.name for v in model.graph.output], "output")
        return model


@ONNX_STEPS.register
class SetOpset(SurgeryStep):
    """Convert the model to another ai.onnx opset with onnx.version_converter.

    Given: opset_import { ai.onnx: 11 }   ... Unsqueeze(n, axes=[0]) ...
    Result: opset_import { ai.onnx: 17 }  ... Unsqueeze(n, [0]) ...   with opset=17
    Ops whose signature changed between the versions are rewritten by the converter (here
    Unsqueeze's axes attribute became an input at opset 13). Upgrades work; onnx has few
    downgrade adapters (no Shape-15 or Relu-14 to older), and a refusal names them.
    """

    step: Literal["onnx::set_opset"] = "onnx::set_opset"
    opset: int = Field(description="Target ai.onnx opset version (7 or newer).", ge=7)

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import onnx
        from onnx import version_converter

        model = onnx_graph.copy_model(model)
        current = onnx_graph.default_opset(model)
        if current == self.opset:
            return model
        try:
            converted = version_converter.convert_version(model, self.opset)
            onnx.checker.check_model(converted)
        except Exception as exc:  # the converter raises bare RuntimeErrors
            raise SurgeryError(
                f"onnx.version_converter cannot convert this model from opset {current} to {self.opset}: {exc}"
            ) from exc
        return converted


@ONNX_STEPS.register
class FlattenShapeReshape(SurgeryStep):
    """Replace the reshape torch exports for `x.view(x.size(0), -1)` with Flatten(axis=1).

    Given: s = Shape(x); n = Gather(s, 0); u = Unsqueeze(n, [0]); t = Concat(u, [-1]); y = Reshape(x, t)
           (or t = Shape(x, start=0, end=1) ++ [-1]; with static_targets also y = Reshape(x, [N, -1])
           where N is x's static batch size)
    Result: y = Flatten(x, axis=1)   (the Shape/Gather/Unsqueeze/Concat nodes left unused are removed)
    Converters and runtimes handle one Flatten better than a shape computation, and the
    result no longer depends on the batch size the model was exported with.
    """

    step: Literal["onnx::flatten_shape_reshape"] = "onnx::flatten_shape_reshape"
    static_targets: bool = Field(
        False,
        description="Also replace Reshape(x, [N, -1]) and Reshape(x, [N, C*H*W]) with a constant target "
                    "whose N is x's static first dimension (what constant folding leaves of the pattern).",
    )

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import onnx

        model = onnx_graph.copy_model(model)
        graph = model.graph
        static_shapes = onnx_graph.static_shapes(model) if self.static_targets else {}
        producer_of = onnx_graph.producers(graph)
        replaced = 0
        for index, node in enumerate(list(graph.node)):
            if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx"):
                continue
            data, target = node.input[0], node.input[1]
            if _is_batch_then_rest(graph, data, target, producer_of, static_shapes.get(data)):
                flatten = onnx.helper.make_node("Flatten", [data], list(node.output), name=node.name or None, axis=1)
                graph.node.remove(node)
                graph.node.insert(index, flatten)
                replaced += 1
        if not replaced:
            raise SurgeryError(
                "onnx::flatten_shape_reshape found no Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))"
                + (" and no Reshape(x, [N, -1]) with x's static batch N" if self.static_targets else
                   "; set static_targets: true to also replace constant [N, -1] targets")
                + "."
            )
        onnx_graph.remove_dead_nodes(graph)
        onnx.checker.check_model(model)
        return model


def _is_batch_then_rest(graph: Any, data: str, target: str, producer_of: dict[str, Any],
                        data_shape: tuple[int, ...] | None) -> bool:
    """Does `target` evaluate to [x.shape[0], -1] for x = `data`?"""
    import numpy as np

    constant = onnx_graph.constant_value(graph, target, producer_of)
    if constant is not None:
        values = [int(v) for v in np.asarray(constant).reshape(-1)]
        if data_shape is None or len(values) != 2 or values[0] != data_shape[0]:
            return False
        return values[1] in (-1, int(np.prod(data_shape[1:])))
    concat = producer_of.get(target)
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 2:
        return False
    rest = onnx_graph.constant_value(graph, concat.input[1], producer_of)
    if rest is None or [int(v) for v in np.asarray(rest).reshape(-1)] != [-1]:
        return False
    return _is_first_dim_of(graph, concat.input[0], data, producer_of)


def _is_first_dim_of(graph: Any, name: str, data: str, producer_of: dict[str, Any]) -> bool:
    """Is `name` a 1-element tensor holding data.shape[0]?"""
    import numpy as np

    node = producer_of.get(name)
    if node is None:
        return False
    if node.op_type == "Shape":
        attrs = {a.name: a.i for a in node.attribute}
        return node.input[0] == data and attrs.get("start", 0) == 0 and attrs.get("end") == 1
    if node.op_type != "Unsqueeze":
        return False
    axes = onnx_graph.constant_value(graph, node.input[1], producer_of) if len(node.input) > 1 else \
        next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    gather = producer_of.get(node.input[0])
    if axes is None or [int(a) for a in np.asarray(axes).reshape(-1)] != [0] or gather is None:
        return False
    if gather.op_type != "Gather" or {a.name: a.i for a in gather.attribute}.get("axis", 0) != 0:
        return False
    index = onnx_graph.constant_value(graph, gather.input[1], producer_of)
    shape = producer_of.get(gather.input[0])
    return (index is not None and np.asarray(index).shape == () and int(index) == 0
            and shape is not None and shape.op_type == "Shape" and shape.input[0] == data
            and not shape.attribute)
