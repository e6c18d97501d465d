"""The converted spec has the declared interface, image parameters and metadata, for every combination."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.quiet import coremltools

coremltools()  # quiet import first, then its protobuf modules
from coremltools.proto import MIL_pb2, FeatureTypes_pb2  # noqa: E402

SIZE = 32  # the fixtures' image size
FP32 = FeatureTypes_pb2.ArrayFeatureType.FLOAT32
MIL_FP16, MIL_FP32 = MIL_pb2.DataType.Value("FLOAT16"), MIL_pb2.DataType.Value("FLOAT32")


def _mil_ops(spec) -> list:
    function = spec.mlProgram.functions["main"]
    return list(function.block_specializations[function.opset].operations)


def _mil_const(spec, name: str) -> np.ndarray:
    for op in _mil_ops(spec):
        if op.type == "const" and op.outputs[0].name == name:
            tensor = op.attributes["val"].immediateValue.tensor
            values = tensor.floats.values if tensor.HasField("floats") else tensor.bytes.values
            if not tensor.HasField("floats"):
                values = np.frombuffer(values, dtype=np.float16)
            shape = [d.constant.size for d in op.outputs[0].type.tensorType.dimensions]
            return np.asarray(values, dtype=np.float32).reshape(shape)
    raise AssertionError(f"no const {name!r} in the program")


def _consumers(spec, var_name: str) -> list:
    return [op for op in _mil_ops(spec)
            if any(b.name == var_name for arg in op.inputs.values() for b in arg.arguments)]


def _affine_chain(spec, start: str) -> tuple[float, np.ndarray, str]:
    """Follow mul(const)/add(const) ops from `start`: (scale, bias, name of the last value)."""
    scale, bias, name = 1.0, np.zeros(1, np.float32), start
    while True:
        ops = [op for op in _consumers(spec, name) if op.type in ("mul", "add")]
        if len(ops) != 1:
            return scale, bias, name
        op = ops[0]
        operands = [op.inputs[k].arguments[0].name for k in ("x", "y")]
        constant = _mil_const(spec, operands[1] if operands[0] == name else operands[0])
        if op.type == "mul":
            scale, bias = scale * float(constant), bias * float(constant)
        else:
            bias = bias + constant.reshape(-1)
        name = op.outputs[0].name


@pytest.mark.parametrize("variant", ["multiarray", "image"])
def test_features_metadata_and_image_parameters(converted_ffdnet, metadata, combination, variant):
    frontend, format, target = combination
    spec = converted_ffdnet(frontend, format, target, variant).get_spec()
    description = spec.description
    assert [f.name for f in description.input] == ["noisy", "sigma"]
    assert [f.name for f in description.output] == ["denoised"]
    assert [f.shortDescription for f in description.input] == ["noisy image", "noise level"]
    assert description.output[0].shortDescription == "denoised image"

    sigma = description.input[1].type.multiArrayType
    assert (list(sigma.shape), sigma.dataType) == ([1], FP32)
    for feature in (description.input[0], description.output[0]):
        if variant == "image":
            image = feature.type.imageType
            assert (image.width, image.height, type(image).ColorSpace.Name(image.colorSpace)) == (SIZE, SIZE, "RGB")
        else:
            array = feature.type.multiArrayType
            assert (list(array.shape), array.dataType) == ([1, 3, SIZE, SIZE], FP32)

    meta = description.metadata
    assert (meta.shortDescription, meta.author, meta.license, meta.versionString) == (
        metadata.short_description, metadata.author, metadata.license, metadata.version)
    assert {k: meta.userDefined[k] for k in metadata.user_defined} == metadata.user_defined
    assert "com.github.apple.coremltools.conversion_date" not in meta.userDefined
    assert meta.userDefined["modelbuild.coreml.frontend"].startswith("onnx2coreml" if frontend == "onnx" else "torch")
    expected_version = {"iOS13": 4, "iOS14": 5, "iOS15": 6, "iOS16": 7}[target]
    if format == "mlprogram":
        assert spec.specificationVersion == expected_version
    else:  # a NeuralNetwork gets the lowest version that holds its layers, never above the target
        assert 4 <= spec.specificationVersion <= expected_version
    assert spec.WhichOneof("Type") == ("neuralNetwork" if format == "neuralnetwork" else "mlProgram")

    if format == "neuralnetwork":
        _check_neuralnetwork_image_io(spec, variant)
    else:
        _check_mlprogram_image_io(spec, variant)


def _check_neuralnetwork_image_io(spec, variant: str) -> None:
    preprocessing = list(spec.neuralNetwork.preprocessing)
    layers = {layer.name: layer for layer in spec.neuralNetwork.layers}
    producer = {out: layer for layer in spec.neuralNetwork.layers for out in layer.output}
    if variant == "multiarray":
        assert preprocessing == []
        assert producer["denoised"].WhichOneof("layer") == "clip"  # the model's own last layer
        return
    (scaler,) = preprocessing
    assert scaler.featureName == "noisy"
    assert scaler.scaler.channelScale == pytest.approx(1 / 255)
    assert (scaler.scaler.redBias, scaler.scaler.greenBias, scaler.scaler.blueBias) == (0, 0, 0)
    multiply = producer["denoised"]
    assert multiply.WhichOneof("layer") == "multiply" and multiply.multiply.alpha == pytest.approx(255.0)
    assert producer[multiply.input[0]].WhichOneof("layer") == "clip"
    assert len(layers) == len(spec.neuralNetwork.layers)


def _check_mlprogram_image_io(spec, variant: str) -> None:
    function = spec.mlProgram.functions["main"]
    assert [i.name for i in function.inputs] == ["noisy", "sigma"]
    assert {i.type.tensorType.dataType for i in function.inputs} == {MIL_FP32}
    scale, bias, _ = _affine_chain(spec, "noisy")
    producer = {op.outputs[0].name: op for op in _mil_ops(spec)}
    if variant == "multiarray":
        assert (scale, float(np.abs(bias).max())) == (1.0, 0.0)
        assert producer["denoised"].type == "clip"
        return
    assert scale == pytest.approx(1 / 255) and not np.any(bias)
    deprocess = producer["denoised"]
    assert deprocess.type == "mul"
    assert producer[deprocess.inputs["x"].arguments[0].name].type == "clip"
    assert float(_mil_const(spec, deprocess.inputs["y"].arguments[0].name)) == 255.0


def test_float16_neuralnetwork_has_fp16_weights_and_float32_io(converted_ffdnet):
    spec = converted_ffdnet("onnx", "neuralnetwork", "iOS13", "multiarray", "float16").get_spec()
    convolutions = [layer.convolution for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "convolution"]
    assert len(convolutions) == 3
    for conv in convolutions:
        assert len(conv.weights.float16Value) > 0 and len(conv.weights.floatValue) == 0
    io = list(spec.description.input) + list(spec.description.output)
    assert {f.type.multiArrayType.dataType for f in io} == {FP32}


def test_float16_mlprogram_computes_in_fp16_with_float32_io(converted_ffdnet):
    spec = converted_ffdnet("torch", "mlprogram", "iOS16", "multiarray", "float16").get_spec()
    io = list(spec.description.input) + list(spec.description.output)
    assert {f.type.multiArrayType.dataType for f in io} == {FP32}
    convs = [op for op in _mil_ops(spec) if op.type == "conv"]
    assert len(convs) == 3
    assert {op.outputs[0].type.tensorType.dataType for op in convs} == {MIL_FP16}
    assert [op.type for op in _consumers(spec, "sigma")] == ["cast"]
