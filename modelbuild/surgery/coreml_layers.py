"""Core ML steps on layers and ops: add softmax, delete a layer, rewire inputs, reshape -> flatten.

These are the edits the ResNet50 write-up did by hand on the spec (what the
coreml_help tool automated): remove a layer and connect its consumers to its
input, point a layer at other blobs, finish a classifier with a softmax.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelbuild.surgery import coreml_spec
from modelbuild.surgery.registry import COREML_STEPS, SurgeryError, SurgeryStep


@COREML_STEPS.register
class AddSoftmax(SurgeryStep):
    """Append a softmax to an output, which keeps its name.

    Given: ... logits = innerProduct(h)            -> output logits
    Result: ... logits_logits = innerProduct(h); logits = softmaxND(logits_logits, axis=-1) -> output logits
    NeuralNetwork: a softmaxND layer. ML Program: a softmax op (with a const axis).
    Layers/ops that read the output inside the model keep reading the logits.
    """

    step: Literal["coreml::add_softmax"] = "coreml::add_softmax"
    output: str | None = Field(None, description="Output to normalise; may be left out if there is only one.")
    axis: int = Field(-1, description="Axis the probabilities sum to one along (negative counts from the end).")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        output = coreml_spec.single_output(spec, self.output, self.step)
        if coreml_spec.model_format(spec) == "mlprogram":
            self._add_op(spec, output)
        else:
            self._add_layer(spec, output)
        return coreml_spec.rebuild(mlmodel, spec)

    def _add_layer(self, spec: Any, output: str) -> None:
        network = coreml_spec.neural_network(spec, self.step)
        if spec.specificationVersion < 4:
            raise SurgeryError(f"{self.step} adds a softmaxND layer, which needs specification version 4 "
                               f"(iOS13); this model has version {spec.specificationVersion}.")
        producers = [layer for layer in network.layers if output in layer.output]
        if not producers:
            raise SurgeryError(f"{self.step}: output {output!r} is not written by any layer.")
        logits = coreml_spec.fresh_name(coreml_spec.nn_blob_names(spec, network), f"{output}_logits")
        for layer, index in coreml_spec.blob_consumers(network, output):
            layer.input[index] = logits
        producer = producers[-1]
        producer.output[list(producer.output).index(output)] = logits
        taken_layers = {layer.name for layer in network.layers}
        softmax = network.layers.add()
        softmax.name = coreml_spec.fresh_name(taken_layers, f"{output}_softmax")
        softmax.input.append(logits)
        softmax.output.append(output)
        softmax.softmaxND.axis = self.axis

    def _add_op(self, spec: Any, output: str) -> None:
        from coremltools.proto import MIL_pb2

        block = coreml_spec.main_block(spec, self.step)
        producer = next((op for op in block.operations for o in op.outputs if o.name == output), None)
        if producer is None:
            raise SurgeryError(f"{self.step}: output {output!r} is not written by any op.")
        value_type = next(o.type for o in producer.outputs if o.name == output)
        taken = coreml_spec.mil_value_names(block, spec)
        logits = coreml_spec.fresh_name(taken, f"{output}_logits")
        coreml_spec.rename_block_value(block, output, logits)
        block.outputs[:] = [output if name == logits else name for name in block.outputs]
        axis = block.operations.add()
        _make_const(axis, coreml_spec.fresh_name(taken, f"{output}_softmax_axis"), self.axis, MIL_pb2)
        softmax = block.operations.add()
        softmax.type = "softmax"
        softmax.inputs["x"].arguments.add().name = logits
        softmax.inputs["axis"].arguments.add().name = axis.outputs[0].name
        result = softmax.outputs.add()
        result.name = output
        result.type.CopyFrom(value_type)
        _set_name_attribute(softmax, f"{output}_softmax", MIL_pb2)


def _set_name_attribute(op: Any, name: str, mil: Any) -> None:
    attribute = op.attributes["name"]
    attribute.type.tensorType.dataType = mil.DataType.STRING
    attribute.immediateValue.tensor.strings.values.append(name)


def _make_const(op: Any, name: str, value: int, mil: Any) -> None:
    """Fill `op` as a const op producing the int32 scalar `value`."""
    op.type = "const"
    _set_name_attribute(op, name, mil)
    val = op.attributes["val"]
    val.type.tensorType.dataType = mil.DataType.INT32
    val.immediateValue.tensor.ints.values.append(value)
    out = op.outputs.add()
    out.name = name
    out.type.tensorType.dataType = mil.DataType.INT32


@COREML_STEPS.register
class DeleteLayer(SurgeryStep):
    """Delete a NeuralNetwork layer and connect its consumers to its input.

    Given: p = pooling(h); r = reshapeStatic(p, [1, -1]); y = innerProduct(r)
    Result: p = pooling(h); y = innerProduct(p)          with layer="r"
    The layer must not write a model output. Which input the consumers get is `input_index`.
    """

    step: Literal["coreml::delete_layer"] = "coreml::delete_layer"
    layer: str = Field(description="Name of the NeuralNetwork layer to delete.")
    input_index: int = Field(0, ge=0, description="Which of the layer's inputs its consumers read instead.")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        network = coreml_spec.neural_network(spec, self.step)
        index, layer = coreml_spec.find_layer(network, self.layer, self.step)
        if self.input_index >= len(layer.input):
            raise SurgeryError(f"{self.step}: layer {self.layer!r} has inputs {list(layer.input)}; "
                               f"input_index {self.input_index} is out of range.")
        written_outputs = set(layer.output) & set(coreml_spec.feature_names(spec, "output"))
        if written_outputs:
            raise SurgeryError(
                f"{self.step}: layer {self.layer!r} writes the model output(s) {sorted(written_outputs)}; "
                "delete a layer before it, or rename the features first."
            )
        replacement = layer.input[self.input_index]
        for blob in layer.output:
            for consumer, i in coreml_spec.blob_consumers(network, blob):
                consumer.input[i] = replacement
        del network.layers[index]
        return coreml_spec.rebuild(mlmodel, spec)


@COREML_STEPS.register
class RewireInputs(SurgeryStep):
    """Point a NeuralNetwork layer at other blobs (model inputs or outputs of earlier layers).

    Given: p = pooling(h); r = reshapeStatic(p); y = innerProduct(r)
    Result: p = pooling(h); r = reshapeStatic(p); y = innerProduct(p)   with layer="y", inputs=["p"]
    Layers left without consumers stay in the model (delete them with coreml::delete_layer).
    """

    step: Literal["coreml::rewire_inputs"] = "coreml::rewire_inputs"
    layer: str = Field(description="Name of the NeuralNetwork layer whose inputs change.")
    inputs: list[str] = Field(description="The layer's complete new list of input blob names, in order.",
                              min_length=1)

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        network = coreml_spec.neural_network(spec, self.step)
        index, layer = coreml_spec.find_layer(network, self.layer, self.step)
        available = coreml_spec.feature_names(spec, "input") + [
            name for earlier in network.layers[:index] for name in earlier.output]
        missing = [name for name in self.inputs if name not in available]
        if missing:
            raise SurgeryError(
                f"{self.step}: layer {self.layer!r} cannot read {missing}: a layer reads model inputs and "
                f"outputs of the layers before it, here {available}."
            )
        layer.input[:] = self.inputs
        return coreml_spec.rebuild(mlmodel, spec)


@COREML_STEPS.register
class ReshapeToFlatten(SurgeryStep):
    """Replace a NeuralNetwork reshapeStatic to [N, -1] (or [N, K]) with flattenTo2D(axis=1).

    Given: r = reshapeStatic(p, targetShape=[1, -1])   (x.view(x.size(0), -1) converted at batch 1)
    Result: r = flattenTo2D(p, axis=1)                  (works for any batch size)
    A reshape baked with the conversion's batch size breaks when the model runs another
    batch size (flexible shapes); the flatten keeps the batch dimension, whatever it is.
    """

    step: Literal["coreml::reshape_to_flatten"] = "coreml::reshape_to_flatten"
    layers: list[str] | None = Field(
        None, description="Names of the reshapeStatic layers to replace; left out: every reshapeStatic "
                          "layer with a 2-element target shape.")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        network = coreml_spec.neural_network(spec, self.step)
        if self.layers is None:
            chosen = [layer for layer in network.layers
                      if layer.WhichOneof("layer") == "reshapeStatic" and len(layer.reshapeStatic.targetShape) == 2]
            if not chosen:
                raise SurgeryError(f"{self.step}: the model has no reshapeStatic layer with a 2-element target.")
        else:
            chosen = [coreml_spec.find_layer(network, name, self.step)[1] for name in self.layers]
        for layer in chosen:
            kind = layer.WhichOneof("layer")
            if kind != "reshapeStatic" or len(layer.reshapeStatic.targetShape) != 2:
                target = list(layer.reshapeStatic.targetShape) if kind == "reshapeStatic" else None
                raise SurgeryError(f"{self.step}: layer {layer.name!r} is a {kind} (target {target}), "
                                   "not a reshapeStatic to a 2-element shape.")
            layer.flattenTo2D.axis = 1  # replaces the reshapeStatic in the `layer` oneof
        return coreml_spec.rebuild(mlmodel, spec)
