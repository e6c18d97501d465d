"""Helpers of the surgery tests: tiny seeded torch models, ONNX export, Core ML conversion, runners,
and `apply_step_checked`, the one helper every step test goes through.

`apply_step(model, step, renamed=..., retyped=...)` applies one step and checks
that the model's input/output names, types and shapes are exactly the old ones
with the promised changes (nothing else moves), and that the model it was given
is left as it was. Each test then asserts on the layer/op types left and
compares numbers before/after (onnxruntime for ONNX, modelbuild.runtime for
Core ML) or against torch.
"""
from __future__ import annotations

import io
import warnings
from typing import Any, Callable

import numpy as np
import onnx
import torch
from torch import nn

from modelbuild import runtime
from modelbuild.coreml.quiet import quiet_conversion
from modelbuild.quiet import coremltools
from modelbuild.surgery import apply_steps

SHAPE = (1, 3, 16, 16)
CLASSES = 10


class TinyClassifier(nn.Module):
    """conv -> relu -> conv -> relu -> global average pool -> x.view(x.size(0), -1) -> linear.

    conv2's weight has 16*32*3*3 = 4608 elements, above coremltools' default compression
    threshold (2048), so quantization and palettization have something to compress.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class TinyImageModel(nn.Module):
    """conv -> sigmoid -> x255: an image-to-image model whose output is already in pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x)) * 255.0


def seeded(model_class: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return model_class().eval()


def sample(batch: int = 1, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *SHAPE[1:])).astype(np.float32)


def torch_outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def export_onnx(model: nn.Module, *, batch: int = 1, opset: int = 17, dynamic_batch: bool = False,
                fold: bool = True, shape: tuple[int, ...] | None = None) -> onnx.ModelProto:
    """torch.onnx.export (TorchScript exporter) to an in-memory ModelProto with inputs x, outputs y.

    The example is `sample(batch)`, or zeros of `shape` when given."""
    example = torch.zeros(shape) if shape is not None else torch.from_numpy(sample(batch))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=["x"], output_names=["y"], do_constant_folding=fold,
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}} if dynamic_batch else None,
        )
    return onnx.load_from_string(buffer.getvalue())


def run_onnx(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def run_coreml(mlmodel: Any, feeds: dict[str, Any]) -> dict[str, Any]:
    return runtime.load(mlmodel, backend="reference").predict(feeds)


def convert_coreml(model: nn.Module, fmt: str, output_shape: tuple[int, ...], target: str | None = None) -> Any:
    """coremltools' torch frontend: input x, output y (shape written into the description); `target`
    (e.g. "iOS18"): the minimum deployment target, else iOS13 (NeuralNetwork) or iOS15 (ML Program)."""
    ct = coremltools()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.from_numpy(sample()))
    target = getattr(ct.target, target or ("iOS13" if fmt == "neuralnetwork" else "iOS15"))
    extra = {"compute_precision": ct.precision.FLOAT32} if fmt == "mlprogram" else {}
    with quiet_conversion():
        mlmodel = ct.convert(traced, convert_to=fmt, minimum_deployment_target=target,
                             inputs=[ct.TensorType(name="x", shape=SHAPE, dtype=np.float32)],
                             outputs=[ct.TensorType(name="y", dtype=np.float32)], **extra)
    spec = mlmodel.get_spec()
    array = spec.description.output[0].type.multiArrayType
    if not array.shape:  # the NeuralNetwork backend leaves output shapes empty
        array.shape.extend(output_shape)
        mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir)
    return mlmodel


# ---- signatures: what apply_step checks ----------------------------------------------------

def onnx_signature(model: onnx.ModelProto) -> dict[str, list[tuple]]:
    initializers = {t.name for t in model.graph.initializer}

    def describe(value: Any) -> tuple:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_param or d.dim_value for d in tensor.shape.dim)
        return value.name, onnx.TensorProto.DataType.Name(tensor.elem_type), dims

    return {"input": [describe(v) for v in model.graph.input if v.name not in initializers],
            "output": [describe(v) for v in model.graph.output]}


def coreml_signature(mlmodel: Any) -> dict[str, list[tuple]]:
    spec = mlmodel.get_spec()

    def describe(feature: Any) -> tuple:
        kind = feature.type.WhichOneof("Type")
        if kind == "imageType":
            image = feature.type.imageType
            return feature.name, "image", (type(image).ColorSpace.Name(image.colorSpace), image.height, image.width)
        if kind != "multiArrayType":  # classifier outputs: stringType, dictionaryType
            return feature.name, kind, ()
        array = feature.type.multiArrayType
        return feature.name, type(array).ArrayDataType.Name(array.dataType), tuple(array.shape)

    return {"input": [describe(f) for f in spec.description.input],
            "output": [describe(f) for f in spec.description.output]}


def signature(model: Any) -> dict[str, list[tuple]]:
    return onnx_signature(model) if isinstance(model, onnx.ModelProto) else coreml_signature(model)


def apply_step_checked(model: Any, step: dict[str, Any], *, renamed: dict[str, str] | None = None,
                       retyped: dict[str, tuple] | None = None) -> Any:
    """Apply `step`; check the interface is the old one except the promised renames/retypes."""
    renamed, retyped = renamed or {}, retyped or {}
    before = signature(model)
    before_bytes = model.SerializeToString() if isinstance(model, onnx.ModelProto) else \
        model.get_spec().SerializeToString()
    result = apply_steps(model, [step])
    expected = {
        role: [(renamed.get(name, name), *retyped.get(renamed.get(name, name), (kind, shape)))
               for name, kind, shape in features]
        for role, features in before.items()
    }
    assert signature(result) == expected
    after_bytes = model.SerializeToString() if isinstance(model, onnx.ModelProto) else \
        model.get_spec().SerializeToString()
    assert after_bytes == before_bytes, "the step changed the model it was given"
    return result


def onnx_op_types(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def nn_layer_types(mlmodel: Any) -> list[str]:
    return [layer.WhichOneof("layer") for layer in mlmodel.get_spec().neuralNetwork.layers]


def mil_op_types(mlmodel: Any) -> list[str]:
    function = mlmodel.get_spec().mlProgram.functions["main"]
    return [op.type for op in function.block_specializations[function.opset].operations]
