"""Helpers shared by the Core ML steps: spec copies, new MLModels, layer and MIL op access.

Core ML steps take a `coremltools.models.MLModel` and return a new one built
from an edited copy of its spec (ML Programs keep pointing at the original
weights folder, which coremltools copies into the new model's package); the
model passed in is never changed.
"""
from __future__ import annotations

from typing import Any, Iterator

from modelbuild.quiet import coremltools
from modelbuild.surgery.registry import SurgeryError

NEURAL_NETWORK_FIELDS = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")


def ct() -> Any:
    """coremltools, imported quietly."""
    return coremltools()


def spec_of(mlmodel: Any) -> Any:
    """A deep copy of the model's spec, after checking `mlmodel` is an MLModel."""
    if not (hasattr(mlmodel, "get_spec") and hasattr(mlmodel, "is_package")):
        raise SurgeryError(
            f"Core ML surgery steps take a coremltools.models.MLModel; got a {type(mlmodel).__name__}."
        )
    return mlmodel.get_spec()


def rebuild(mlmodel: Any, spec: Any) -> Any:
    """A new MLModel from `spec`, with `mlmodel`'s weights for an ML Program."""
    models = ct().models
    if spec.WhichOneof("Type") == "mlProgram":
        return models.MLModel(spec, weights_dir=mlmodel.weights_dir, compute_units=mlmodel.compute_unit)
    return models.MLModel(spec, compute_units=mlmodel.compute_unit)


def model_format(spec: Any) -> str:
    """'neuralnetwork', 'mlprogram' or the spec's own type name (pipeline, ...)."""
    kind = spec.WhichOneof("Type")
    if kind in NEURAL_NETWORK_FIELDS:
        return "neuralnetwork"
    return "mlprogram" if kind == "mlProgram" else str(kind)


def neural_network(spec: Any, step: str) -> Any:
    """The NeuralNetwork message of the spec, or a SurgeryError naming the step."""
    kind = spec.WhichOneof("Type")
    if kind not in NEURAL_NETWORK_FIELDS:
        raise SurgeryError(f"{step} edits NeuralNetwork layers; this model is a {model_format(spec)} model.")
    return getattr(spec, kind)


def find_layer(network: Any, name: str, step: str) -> tuple[int, Any]:
    """(index, layer) of the layer called `name`, or a SurgeryError listing the layer names."""
    for index, layer in enumerate(network.layers):
        if layer.name == name:
            return index, layer
    names = [layer.name for layer in network.layers]
    raise SurgeryError(f"{step}: the model has no layer {name!r}; its layers are {names}.")


def blob_consumers(network: Any, blob: str) -> Iterator[tuple[Any, int]]:
    """(layer, input index) of every layer input that reads `blob`."""
    for layer in network.layers:
        for i, name in enumerate(layer.input):
            if name == blob:
                yield layer, i


def feature_names(spec: Any, role: str) -> list[str]:
    """Names of the model's 'input' or 'output' features."""
    return [feature.name for feature in getattr(spec.description, role)]


def check_features(spec: Any, names: list[str], role: str, step: str) -> None:
    """SurgeryError unless every name is a model feature of this `role`."""
    existing = feature_names(spec, role)
    unknown = [name for name in names if name not in existing]
    if unknown:
        raise SurgeryError(f"{step}: the model has no {role}(s) {unknown}; its {role}s are {existing}.")


def single_output(spec: Any, name: str | None, step: str) -> str:
    """`name`, checked to be an output, or the model's only output when `name` is None."""
    outputs = feature_names(spec, "output")
    if name is None:
        if len(outputs) != 1:
            raise SurgeryError(f"{step}: the model has outputs {outputs}; say which one with 'output'.")
        return outputs[0]
    check_features(spec, [name], "output", step)
    return name


def main_block(spec: Any, step: str) -> Any:
    """The main function's block of an ML Program spec, or a SurgeryError naming the step."""
    if spec.WhichOneof("Type") != "mlProgram":
        raise SurgeryError(f"{step} edits ML Program ops; this model is a {model_format(spec)} model.")
    function = spec.mlProgram.functions["main"]
    return function.block_specializations[function.opset]


def find_op(block: Any, name: str, step: str) -> tuple[int, Any]:
    """(index, op) of the ML Program op that outputs the value `name`, or a SurgeryError listing them."""
    for index, op in enumerate(block.operations):
        if any(output.name == name for output in op.outputs):
            return index, op
    names = [output.name for op in block.operations if op.type != "const" for output in op.outputs]
    raise SurgeryError(f"{step}: the program has no op with output {name!r}; its (non-const) op outputs "
                       f"are {names}.")


def insert_op(block: Any, index: int) -> Any:
    """A new, empty op at position `index` of the block (protobuf lists have no insert)."""
    operations = []
    for op in block.operations:
        operations.append(type(op)())
        operations[-1].CopyFrom(op)
    del block.operations[:]
    block.operations.extend(operations[:index])
    new_op = block.operations.add()
    block.operations.extend(operations[index:])
    return new_op


def op_bindings(block: Any) -> Iterator[Any]:
    """Every name binding (Argument.Binding) read by an op of `block` or a nested block."""
    for op in block.operations:
        for argument in op.inputs.values():
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "name":
                    yield binding
        for nested in op.blocks:
            yield from op_bindings(nested)


def rename_block_value(block: Any, old: str, new: str) -> None:
    """Rename the MIL value `old` to `new`: its producing op's output and every reader."""
    for op in block.operations:
        for output in op.outputs:
            if output.name == old:
                output.name = new
    for binding in op_bindings(block):
        if binding.name == old:
            binding.name = new
    for i, name in enumerate(block.outputs):
        if name == old:
            block.outputs[i] = new


def fresh_name(taken: set[str], base: str) -> str:
    """`base`, or `base_1`, `base_2`, ... whichever is not in `taken` (which it joins)."""
    name, index = base, 0
    while name in taken:
        index += 1
        name = f"{base}_{index}"
    taken.add(name)
    return name


def nn_blob_names(spec: Any, network: Any) -> set[str]:
    """Every blob name of a NeuralNetwork: model inputs and layer outputs."""
    return set(feature_names(spec, "input")) | {name for layer in network.layers for name in layer.output}


def mil_value_names(block: Any, spec: Any) -> set[str]:
    """Every value name of an ML Program block: function inputs and op outputs."""
    names = set(feature_names(spec, "input"))
    for op in block.operations:
        names.update(output.name for output in op.outputs)
    return names
