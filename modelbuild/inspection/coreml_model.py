"""Describe a Core ML model (.mlmodel file or .mlpackage folder) from its protobuf spec."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.inspection.common import ACCEPTED, NEURAL_NETWORK_TYPES, InspectError, op_histogram
from modelbuild.inspection.coreml_features import describe_feature
from modelbuild.inspection.weights import weight_forms
from modelbuild.quiet import coremltools

# Core ML specification version -> the first OS releases that run it (Model.proto's version table).
DEPLOYMENT_TARGETS = {
    1: "iOS11 / macOS10.13", 2: "iOS11.2 / macOS10.13.2", 3: "iOS12 / macOS10.14",
    4: "iOS13 / macOS10.15", 5: "iOS14 / macOS11", 6: "iOS15 / macOS12", 7: "iOS16 / macOS13",
    8: "iOS17 / macOS14", 9: "iOS18 / macOS15", 10: "iOS26 / macOS26",
}
PIPELINE_TYPES = ("pipeline", "pipelineClassifier", "pipelineRegressor")


def describe_coreml(path: Path) -> dict[str, Any]:
    """The description of an .mlmodel file or .mlpackage folder."""
    ct = coremltools()
    if path.suffix.lower() == ".mlpackage" and not path.is_dir():
        raise InspectError(f"Cannot read {path}: an .mlpackage must be a folder, this is a file.")
    if path.suffix.lower() == ".mlmodel" and path.is_dir():
        raise InspectError(f"Cannot read {path}: an .mlmodel must be a file, this is a folder.")
    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as err:  # protobuf and libmodelpackage raise unrelated types
        raise InspectError(f"Cannot read {path} as a Core ML model ({type(err).__name__}: {err}); "
                           f"inspect accepts a valid {ACCEPTED} file.") from err
    if spec.WhichOneof("Type") is None:
        raise InspectError(f"Cannot read {path} as a Core ML model: the spec names no model type; "
                           f"inspect accepts a valid {ACCEPTED} file.")
    _check_weights(path, spec)
    return {"format": "coreml", **describe_spec(spec), "weights": weight_forms(spec)}


def _check_weights(path: Path, spec: Any) -> None:
    """Refuse a package whose weight file does not hold the blobs its program refers to."""
    from modelbuild.runtime import blob_problems

    weights = path / "Data" / "com.apple.CoreML" / "weights" if path.is_dir() else None
    problems = blob_problems(spec, weights if weights is not None and weights.is_dir() else None)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InspectError(f"Cannot inspect {path}: its weights are damaged: {problems[0]}{more}.")


def describe_spec(spec: Any) -> dict[str, Any]:
    """The description of a Core ML `Model` protobuf message (also used for pipeline stages)."""
    model_type = spec.WhichOneof("Type")
    model = getattr(spec, model_type)
    interface = spec.description
    description: dict[str, Any] = {
        "model_type": model_type,
        "specification_version": spec.specificationVersion,
        "minimum_deployment_target": DEPLOYMENT_TARGETS.get(spec.specificationVersion),
        "inputs": [describe_feature(f) for f in interface.input],
        "outputs": [describe_feature(f) for f in interface.output],
    }
    if interface.state:
        description["states"] = [describe_feature(f) for f in interface.state]
    if model_type == "mlProgram":
        description["mil_opsets"] = sorted({f.opset for f in model.functions.values()})
        description["functions"] = sorted(model.functions)
    description["ops"] = _ops(model_type, model)
    preprocessing = _preprocessing(model_type, model, description["inputs"])
    if preprocessing:
        description["preprocessing"] = preprocessing
    classifier = _classifier(model_type, model, interface)
    if classifier:
        description["classifier"] = classifier
    if model_type in PIPELINE_TYPES:
        stages = model.pipeline.models if model_type != "pipeline" else model.models
        description["pipeline"] = [describe_spec(stage) for stage in stages]
    description["metadata"] = _metadata(interface.metadata)
    return description


def _ops(model_type: str, model: Any) -> dict[str, Any] | None:
    if model_type in NEURAL_NETWORK_TYPES:
        return op_histogram("layers", _layer_types(model))
    if model_type == "mlProgram":
        return op_histogram("ops", (op.type for op in _mil_operations(model)))
    return None


def _layer_types(network: Any) -> list[str]:
    """The `layer` oneof name of every layer, including the layers of branch and loop bodies."""
    types = []
    for layer in network.layers:
        kind = layer.WhichOneof("layer")
        types.append(kind)
        for _, value in getattr(layer, kind).ListFields():
            if getattr(value, "DESCRIPTOR", None) is not None and value.DESCRIPTOR.name == "NeuralNetwork":
                types.extend(_layer_types(value))
    return types


def _mil_operations(program: Any) -> list[Any]:
    """Every operation of every function of an ML Program, nested blocks (cond, loops) included."""
    operations = []

    def walk(block: Any) -> None:
        for operation in block.operations:
            operations.append(operation)
            for nested in operation.blocks:
                walk(nested)

    for function in program.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    return operations


def _preprocessing(model_type: str, model: Any, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Image scale and biases: NeuralNetwork `preprocessing` entries, or the ML Program ops
    coremltools inserts after an image input (`<input>__scaled__` mul, `<input>__biased__` add)."""
    if model_type in NEURAL_NETWORK_TYPES:
        return [_nn_preprocessing(entry, inputs) for entry in model.preprocessing]
    if model_type == "mlProgram":
        by_output = {op.outputs[0].name: op for op in _mil_operations(model) if op.outputs}
        found = []
        for feature in (f for f in inputs if f["type"] == "image"):
            name = feature["name"]
            scale = _mil_const_operand(by_output.get(f"{name}__scaled__"), "y", by_output)
            bias = _mil_const_operand(by_output.get(f"{name}__biased__"), "y", by_output)
            if scale is not None or bias is not None:
                found.append({"feature": name, "source": "program ops", "scale": scale[0] if scale else 1.0,
                              "bias": _channel_biases(feature["color_space"], bias or [0.0, 0.0, 0.0])})
        return found
    return []


def _channel_biases(color_space: str, biases: list[float]) -> dict[str, float]:
    """Biases by channel name; `biases` is in the image's channel order (ct.ImageType's `bias`)."""
    if color_space.startswith("GRAYSCALE"):
        return {"gray": biases[0]}
    channels = ("blue", "green", "red") if color_space == "BGR" else ("red", "green", "blue")
    values = biases if len(biases) == 3 else biases[:1] * 3
    return dict(zip(channels, values))


def _nn_preprocessing(entry: Any, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    images = [f for f in inputs if f["type"] == "image"]
    # An empty featureName means "the only image input" (NeuralNetwork.proto).
    matching = [f for f in images if f["name"] == entry.featureName] or images[:1]
    feature = matching[0] if matching else {"name": entry.featureName, "color_space": "RGB"}
    if entry.WhichOneof("preprocessor") == "meanImage":
        return {"feature": feature["name"], "source": "meanImage",
                "mean_image_values": len(entry.meanImage.meanImage)}
    scaler = entry.scaler
    bias = ({"gray": scaler.grayBias} if feature["color_space"].startswith("GRAYSCALE")
            else {"red": scaler.redBias, "green": scaler.greenBias, "blue": scaler.blueBias})
    return {"feature": feature["name"], "source": "scaler", "scale": scaler.channelScale, "bias": bias}


def _mil_const_operand(operation: Any, argument: str, by_output: dict[str, Any]) -> list[float] | None:
    """The numbers of an op's operand when it is an inline constant, else None."""
    if operation is None or argument not in operation.inputs:
        return None
    for binding in operation.inputs[argument].arguments:
        if binding.HasField("value"):
            return _mil_immediate_numbers(binding.value)
        producer = by_output.get(binding.name)
        if producer is not None and producer.type == "const" and "val" in producer.attributes:
            return _mil_immediate_numbers(producer.attributes["val"])
    return None


def _mil_immediate_numbers(value: Any) -> list[float] | None:
    import numpy as np

    if not value.HasField("immediateValue") or not value.immediateValue.HasField("tensor"):
        return None
    tensor = value.immediateValue.tensor
    kind = tensor.WhichOneof("value")
    if kind in ("floats", "doubles", "ints", "longInts"):
        return [float(v) for v in getattr(tensor, kind).values]
    if kind == "bytes" and value.type.tensorType.dataType == 10:  # MIL FLOAT16 packed in bytes
        return [float(v) for v in np.frombuffer(tensor.bytes.values, dtype=np.float16)]
    return None


def _classifier(model_type: str, model: Any, interface: Any) -> dict[str, Any] | None:
    labels = _class_labels(model_type, model)
    if labels is None:
        return None
    return {
        "class_labels": len(labels),
        "label_type": "int64" if labels and isinstance(labels[0], int) else "string",
        "first_labels": labels[:10],
        "predicted_feature_name": interface.predictedFeatureName,
        "predicted_probabilities_name": interface.predictedProbabilitiesName,
    }


def _class_labels(model_type: str, model: Any) -> list[str | int] | None:
    """Labels from a classifier's `ClassLabels` oneof, or from an ML Program's `classify` op."""
    if "ClassLabels" in model.DESCRIPTOR.oneofs_by_name:
        kind = model.WhichOneof("ClassLabels")
        return list(getattr(model, kind).vector) if kind else []
    if model_type == "mlProgram":
        for operation in _mil_operations(model):
            if operation.type == "classify" and "classes" in operation.inputs:
                return _mil_list_values(operation.inputs["classes"].arguments[0].value)
    return None


def _mil_list_values(value: Any) -> list[str | int]:
    labels: list[str | int] = []
    for item in value.immediateValue.list.values:
        tensor = item.immediateValue.tensor
        kind = tensor.WhichOneof("value")
        if kind in ("strings", "longInts", "ints"):
            labels.extend(getattr(tensor, kind).values)
    return labels


def _metadata(metadata: Any) -> dict[str, Any]:
    fields = {name: getattr(metadata, name)
              for name in ("shortDescription", "author", "license", "versionString")}
    described: dict[str, Any] = {key: value for key, value in fields.items() if value}
    if metadata.userDefined:
        described["userDefined"] = dict(sorted(metadata.userDefined.items()))
    return described
