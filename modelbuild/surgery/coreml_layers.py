"""Core ML steps on layers and ops: add softmax, delete a layer/op, rewire inputs, reshape -> flatten.

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

    Given: ... y = innerProduct(h)                                  -> output y
    Result: ... y_logits = innerProduct(h); y = softmaxND(y_logits, axis=-1) -> output y
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
    """Delete a layer (NeuralNetwork) or op (ML Program) and connect its consumers to its input.

    Given: p = pooling(h); r = reshapeStatic(p, [1, -1]); y = innerProduct(r)
    Result: p = pooling(h); y = innerProduct(p)          with layer="r"
    ML Program ops are named by their output value (`r` in `r = reshape(x=p, shape=s)`);
    consumers then read the op's `argument` (default `x`). The deleted layer/op must not
    write a model output; consts that only fed it stay (unused).
    """

    step: Literal["coreml::delete_layer"] = "coreml::delete_layer"
    layer: str = Field(description="NeuralNetwork layer name, or ML Program op output name, to delete.")
    input_index: int = Field(0, ge=0, description="NeuralNetwork: which of the layer's inputs its consumers "
                                                  "read instead.")
    argument: str = Field("x", description="ML Program: the op argument whose value its consumers read instead.")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        if coreml_spec.model_format(spec) == "mlprogram":
            self._delete_op(spec)
        else:
            self._delete_layer(spec)
        return coreml_spec.rebuild(mlmodel, spec)

    def _refuse_model_outputs(self, spec: Any, written: list[str]) -> None:
        outputs = set(written) & set(coreml_spec.feature_names(spec, "output"))
        if outputs:
            raise SurgeryError(
                f"{self.step}: {self.layer!r} writes the model output(s) {sorted(outputs)}; "
                "delete a layer before it, or rename the features first."
            )

    def _delete_layer(self, spec: Any) -> None:
        network = coreml_spec.neural_network(spec, self.step)
        index, layer = coreml_spec.find_layer(network, self.layer, self.step)
        if self.input_index >= len(layer.input):
            raise SurgeryError(f"{self.step}: layer {self.layer!r} has inputs {list(layer.input)}; "
                               f"input_index {self.input_index} is out of range.")
        self._refuse_model_outputs(spec, list(layer.output))
        replacement = layer.input[self.input_index]
        for blob in layer.output:
            for consumer, i in coreml_spec.blob_consumers(network, blob):
                consumer.input[i] = replacement
        del network.layers[index]

    def _delete_op(self, spec: Any) -> None:
        block = coreml_spec.main_block(spec, self.step)
        index, op = coreml_spec.find_op(block, self.layer, self.step)
        outputs = [output.name for output in op.outputs]
        self._refuse_model_outputs(spec, outputs)
        bindings = op.inputs[self.argument].arguments if self.argument in op.inputs else []
        if len(bindings) != 1 or bindings[0].WhichOneof("binding") != "name":
            raise SurgeryError(f"{self.step}: op {self.layer!r} ({op.type}) has no single-value argument "
                               f"{self.argument!r}; its arguments are {sorted(op.inputs)}.")
        replacement = bindings[0].name
        for binding in coreml_spec.op_bindings(block):
            if binding.name in outputs:
                binding.name = replacement
        del block.operations[index]


@COREML_STEPS.register
class RewireInputs(SurgeryStep):
    """Point a layer (NeuralNetwork) or op (ML Program) at other values defined before it.

    Given: p = pooling(h); r = reshapeStatic(p); y = innerProduct(r)
    Result: p = pooling(h); r = reshapeStatic(p); y = innerProduct(p)   with layer="y", inputs=["p"]
    ML Program: inputs maps argument names to values, e.g. layer="y", inputs={"x": "p"}.
    Layers/ops left without consumers stay in the model (delete them with coreml::delete_layer).
    """

    step: Literal["coreml::rewire_inputs"] = "coreml::rewire_inputs"
    layer: str = Field(description="NeuralNetwork layer name, or ML Program op output name, to rewire.")
    inputs: list[str] | dict[str, str] = Field(
        description="NeuralNetwork: the layer's complete new list of input blob names, in order. "
                    "ML Program: argument name -> value name, for the arguments that change.",
        min_length=1)

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        program = coreml_spec.model_format(spec) == "mlprogram"
        if program != isinstance(self.inputs, dict):
            raise SurgeryError(
                f"{self.step}: for {'an ML Program' if program else 'a NeuralNetwork'} model, 'inputs' must be "
                f"{'a mapping argument -> value name' if program else 'a list of blob names'}; got {self.inputs!r}."
            )
        if program:
            self._rewire_op(spec)
        else:
            self._rewire_layer(spec)
        return coreml_spec.rebuild(mlmodel, spec)

    def _check_defined(self, wanted: list[str], available: list[str]) -> None:
        missing = [name for name in wanted if name not in available]
        if missing:
            raise SurgeryError(
                f"{self.step}: {self.layer!r} cannot read {missing}: a layer or op reads model inputs and "
                f"the values computed before it, here {available}."
            )

    def _rewire_layer(self, spec: Any) -> None:
        network = coreml_spec.neural_network(spec, self.step)
        index, layer = coreml_spec.find_layer(network, self.layer, self.step)
        available = coreml_spec.feature_names(spec, "input") + [
            name for earlier in network.layers[:index] for name in earlier.output]
        self._check_defined(list(self.inputs), available)
        layer.input[:] = self.inputs

    def _rewire_op(self, spec: Any) -> None:
        block = coreml_spec.main_block(spec, self.step)
        index, op = coreml_spec.find_op(block, self.layer, self.step)
        unknown = [name for name in self.inputs if name not in op.inputs]
        if unknown:
            raise SurgeryError(f"{self.step}: op {self.layer!r} ({op.type}) has no argument(s) {unknown}; "
                               f"its arguments are {sorted(op.inputs)}.")
        available = coreml_spec.feature_names(spec, "input") + [
            output.name for earlier in block.operations[:index] for output in earlier.outputs]
        self._check_defined(list(self.inputs.values()), available)
        for argument, value in self.inputs.items():
            del op.inputs[argument].arguments[:]
            op.inputs[argument].arguments.add().name = value


@COREML_STEPS.register
class ReshapeToFlatten(SurgeryStep):
    """Replace a reshape to a 2-element target [N, -1] (or [N, K]) with a flatten at axis 1.

    Given: r = reshapeStatic(p, targetShape=[1, -1])   (x.view(x.size(0), -1) converted at batch 1)
    Result: r = flattenTo2D(p, axis=1)                  (works for any batch size)
    ML Program: r = reshape(x=p, shape=const [1, -1])  ->  r = flatten2d(x=p, axis=const 1).
    A reshape baked with the conversion's batch size breaks when the model runs another
    batch size (flexible shapes); the flatten keeps the batch dimension, whatever it is.
    """

    step: Literal["coreml::reshape_to_flatten"] = "coreml::reshape_to_flatten"
    layers: list[str] | None = Field(
        None, description="NeuralNetwork layer names (ML Program: op output names) of the reshapes to replace; "
                          "left out: every reshape to a constant 2-element target shape.")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        if coreml_spec.model_format(spec) == "mlprogram":
            self._replace_ops(spec)
        else:
            self._replace_layers(spec)
        return coreml_spec.rebuild(mlmodel, spec)

    def _refuse(self, name: str, kind: str, target: Any) -> None:
        raise SurgeryError(f"{self.step}: {name!r} is a {kind} (target {target}), not a reshape to a "
                           "constant 2-element shape.")

    def _replace_layers(self, spec: Any) -> None:
        network = coreml_spec.neural_network(spec, self.step)
        if self.layers is None:
            chosen = [layer for layer in network.layers
                      if layer.WhichOneof("layer") == "reshapeStatic" and len(layer.reshapeStatic.targetShape) == 2]
        else:
            chosen = [coreml_spec.find_layer(network, name, self.step)[1] for name in self.layers]
        if not chosen:
            raise SurgeryError(f"{self.step}: the model has no reshapeStatic layer with a 2-element target.")
        for layer in chosen:
            kind = layer.WhichOneof("layer")
            target = list(layer.reshapeStatic.targetShape) if kind == "reshapeStatic" else None
            if kind != "reshapeStatic" or len(target) != 2:
                self._refuse(layer.name, kind, target)
            layer.flattenTo2D.axis = 1  # replaces the reshapeStatic in the `layer` oneof

    def _replace_ops(self, spec: Any) -> None:
        from coremltools.proto import MIL_pb2

        block = coreml_spec.main_block(spec, self.step)
        const_shapes = {op.outputs[0].name: [int(d.constant.size) for d in op.outputs[0].type.tensorType.dimensions]
                        for op in block.operations if op.type == "const"}

        def flattenable(op: Any) -> bool:
            bindings = op.inputs["shape"].arguments if "shape" in op.inputs else []
            return op.type == "reshape" and len(bindings) == 1 and const_shapes.get(bindings[0].name) == [2]

        if self.layers is None:
            chosen = [op.outputs[0].name for op in block.operations if flattenable(op)]
            if not chosen:
                raise SurgeryError(f"{self.step}: the program has no reshape op with a constant 2-element shape.")
        else:
            chosen = list(self.layers)
        taken = coreml_spec.mil_value_names(block, spec)
        for name in chosen:
            index, op = coreml_spec.find_op(block, name, self.step)
            if not flattenable(op):
                self._refuse(name, op.type, sorted(op.inputs))
            axis = coreml_spec.insert_op(block, index)
            _make_const(axis, coreml_spec.fresh_name(taken, f"{name}_flatten_axis"), 1, MIL_pb2)
            op = block.operations[index + 1]
            op.type = "flatten2d"
            del op.inputs["shape"]
            op.inputs["axis"].arguments.add().name = axis.outputs[0].name
