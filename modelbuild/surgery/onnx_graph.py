"""Small helpers for editing an onnx.GraphProto in place: names, consumers, dead code.

Steps copy the model first (`copy_model`) and edit the copy, so that a step
never changes the model it was given.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import onnx

from modelbuild.surgery.registry import SurgeryError


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy of `model` (protobuf CopyFrom), checked to be an onnx.ModelProto."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise SurgeryError(f"ONNX surgery steps take an onnx.ModelProto; got a {type(model).__name__}.")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The graphs held in a node's attributes (If/Loop/Scan bodies)."""
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs


def rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename the value `old` to `new` everywhere in `graph` and its subgraphs."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for body in subgraphs(node):
            rename_value(body, old, new)
    for collection in (graph.input, graph.output, graph.value_info):
        for value in collection:
            if value.name == old:
                value.name = new
    for initializer in graph.initializer:
        if initializer.name == old:
            initializer.name = new


def value_names(graph: onnx.GraphProto) -> set[str]:
    """Every value name defined or used in `graph` (inputs, outputs, initializers, node I/O)."""
    names = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    names.discard("")
    return names


def rename_many(graph: onnx.GraphProto, mapping: dict[str, str], existing: list[str], role: str) -> None:
    """Rename graph inputs or outputs (`role`) by `mapping`, refusing unknown names and clashes."""
    unknown = [old for old in mapping if old not in existing]
    if unknown:
        raise SurgeryError(f"The model has no {role}(s) {unknown}; its {role}s are {existing}.")
    taken = value_names(graph) - set(mapping)
    clashes = [new for new in mapping.values() if new in taken]
    targets = list(mapping.values())
    if clashes or len(set(targets)) != len(targets):
        raise SurgeryError(
            f"Cannot rename {role}s to {targets}: {sorted(set(clashes)) or 'duplicates'} "
            "already name(s) another value; choose names not used in the graph."
        )
    temporary = {old: f"__modelbuild_rename_{i}__" for i, old in enumerate(mapping)}
    for old, tmp in temporary.items():  # two phases, so that a <-> b swaps work
        rename_value(graph, old, tmp)
    for old, tmp in temporary.items():
        rename_value(graph, tmp, mapping[old])


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """Value name -> the node that outputs it."""
    return {name: node for node in graph.node for name in node.output if name}


def used_names(graph: onnx.GraphProto) -> set[str]:
    """Names read by some node (including nodes of subgraphs) or returned by the graph."""
    used = {value.name for value in graph.output}
    for node in graph.node:
        used.update(node.input)
        for body in subgraphs(node):
            used |= used_names(body)
    return used


def remove_dead_nodes(graph: onnx.GraphProto) -> int:
    """Drop nodes none of whose outputs are used, and unused initializers; returns the node count."""
    removed = 0
    while True:
        used = used_names(graph)
        dead = [node for node in graph.node if not any(name in used for name in node.output if name)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
        removed += len(dead)
    used = used_names(graph) | {value.name for value in graph.input}
    for initializer in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(initializer)
    return removed


def constant_value(graph: onnx.GraphProto, name: str, producer_of: dict[str, Any] | None = None) -> Any:
    """The numpy value of `name` if it is an initializer (not an input) or a Constant's output, else None."""
    from onnx import numpy_helper

    if name in {value.name for value in graph.input}:
        return None
    for initializer in graph.initializer:
        if initializer.name == name:
            return numpy_helper.to_array(initializer)
    node = (producer_of or producers(graph)).get(name)
    if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(node).run(None, {})[0]
    return None


def default_opset(model: onnx.ModelProto) -> int:
    """The model's ai.onnx opset version."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return int(opset.version)
    raise SurgeryError("The ONNX model imports no default ('ai.onnx') opset.")


def static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Value name -> shape, for every value whose shape onnx shape inference knows fully."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    return shapes
