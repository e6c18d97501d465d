"""What an artifact weighs on disk: its size, and how many of those bytes are weights.

.mlpackage: the files in the package, and the files of its weights folder. .mlmodel
(NeuralNetwork): the file, and the bytes its WeightParams hold (float32, float16,
quantized). .onnx: the file, and the bytes of its initializers (raw or typed data).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from modelbuild.quiet import coremltools


def artifact_sizes(path: Path) -> dict[str, int]:
    """{"size_bytes": ..., "weights_bytes": ...} of a model file or package."""
    path = Path(path)
    if path.is_dir():
        files = [f for f in path.rglob("*") if f.is_file()]
        weights = [f for f in files if "weights" in f.relative_to(path).parts]
        return {"size_bytes": sum(f.stat().st_size for f in files),
                "weights_bytes": sum(f.stat().st_size for f in weights)}
    sizes = {"size_bytes": path.stat().st_size}
    if path.suffix == ".mlmodel":
        sizes["weights_bytes"] = _mlmodel_weight_bytes(path)
    elif path.suffix == ".onnx":
        sizes["weights_bytes"] = _onnx_weight_bytes(path)
    return sizes


def _mlmodel_weight_bytes(path: Path) -> int:
    spec = coremltools().utils.load_spec(str(path))
    return sum(weight_params_bytes(params) for params in weight_params(spec))


def weight_params(message: Any) -> Iterator[Any]:
    """Every NeuralNetwork WeightParams message inside a protobuf message, depth first."""
    if type(message).__name__ == "WeightParams":
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].type == field.TYPE_MESSAGE:
                for item in value.values():
                    yield from weight_params(item)
        elif field.is_repeated:
            for item in value:
                yield from weight_params(item)
        else:
            yield from weight_params(value)


def weight_params_bytes(params: Any) -> int:
    """The bytes a WeightParams message stores its values in."""
    return (4 * len(params.floatValue) + len(params.float16Value) + len(params.rawValue)
            + len(params.int8RawValue))


def _onnx_weight_bytes(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            total += int(next((entry.value for entry in tensor.external_data if entry.key == "length"), 0))
        else:
            total += len(tensor.raw_data) if tensor.raw_data else numpy_helper.to_array(tensor).nbytes
    return total
