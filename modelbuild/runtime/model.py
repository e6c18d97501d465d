"""`load()` and `Model`: run a Core ML model with a `predict` like coremltools' MLModel.

`load(source, backend=...)` accepts a path (.mlmodel / .mlpackage), a Model
spec (coremltools.proto.Model_pb2.Model) or a coremltools MLModel. The
reference backend executes NeuralNetwork specs (modelbuild.runtime.nn), ML
Programs (modelbuild.runtime.mil) and pipelines of them; the native backend
hands the model to Apple's Core ML through coremltools (macOS only).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from modelbuild.runtime.features import (
    FeatureDescription,
    InputError,
    check_array_shape,
    check_input_names,
    describe_features,
)
from modelbuild.runtime.images import array_to_image, image_to_array
from modelbuild.runtime.registry import ModelRuntimeError

BACKENDS = ("auto", "reference", "native")
NEURAL_NETWORK_TYPES = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")


def _ct() -> Any:
    from modelbuild.quiet import coremltools

    return coremltools()


def resolve_backend(backend: str) -> str:
    """'auto' -> 'native' on macOS, else 'reference'; anything else is checked."""
    if backend not in BACKENDS:
        raise ModelRuntimeError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if backend == "auto":
        return "native" if sys.platform == "darwin" else "reference"
    return backend


def _read_source(source: Any, weights_dir: str | Path | None) -> tuple[Any, Path | None, Any, Path | None]:
    """(spec, weights_dir, mlmodel or None, path or None) from any accepted source."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ModelRuntimeError(f"No Core ML model at {str(path)!r}.")
        ct = _ct()
        if path.is_dir():
            manifest = path / "Manifest.json"
            if not manifest.exists():
                raise ModelRuntimeError(f"{str(path)!r} is a folder but not an .mlpackage (no Manifest.json).")
            spec_path = next(iter(sorted(path.glob("Data/com.apple.CoreML/*.mlmodel"))), None)
            if spec_path is None:
                raise ModelRuntimeError(f"The package {str(path)!r} holds no Data/com.apple.CoreML/*.mlmodel.")
            spec = ct.utils.load_spec(str(spec_path))
            found = spec_path.parent / "weights"
            return spec, Path(weights_dir) if weights_dir else (found if found.exists() else None), None, path
        try:
            spec = ct.utils.load_spec(str(path))
        except Exception as err:  # protobuf decode errors have many types
            raise ModelRuntimeError(f"{str(path)!r} is not a readable Core ML model: {err}") from err
        return spec, Path(weights_dir) if weights_dir else None, None, path
    if hasattr(source, "get_spec") and hasattr(source, "predict"):
        found = getattr(source, "weights_dir", None)
        return source.get_spec(), Path(weights_dir or found) if (weights_dir or found) else None, source, None
    if hasattr(source, "WhichOneof") and hasattr(source, "description"):
        return source, Path(weights_dir) if weights_dir else None, None, None
    raise ModelRuntimeError(
        f"Cannot load a Core ML model from a {type(source).__name__}; pass a path to an .mlmodel "
        f"or .mlpackage, a coremltools Model spec or a coremltools MLModel."
    )


class Model:
    """A loaded Core ML model; `predict` mirrors coremltools.models.MLModel.predict."""

    def __init__(self, spec: Any, *, backend: str = "auto", weights_dir: Path | None = None,
                 mlmodel: Any = None, path: Path | None = None) -> None:
        self.spec = spec
        self.path = path
        self.weights_dir = weights_dir
        self.model_type: str = spec.WhichOneof("Type") or "undefined"
        self.inputs: dict[str, FeatureDescription] = describe_features(spec.description.input)
        self.outputs: dict[str, FeatureDescription] = describe_features(spec.description.output)
        self.backend = resolve_backend(backend)
        if self.backend == "native":
            from modelbuild.runtime.native import NativeExecutor

            self._executor: Any = NativeExecutor(spec, mlmodel=mlmodel, path=path, weights_dir=weights_dir)
        else:
            self._executor = make_reference_executor(spec, weights_dir, self.inputs, self.outputs)

    # -- description ------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return list(self.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    @property
    def input_description(self) -> dict[str, FeatureDescription]:
        return dict(self.inputs)

    @property
    def output_description(self) -> dict[str, FeatureDescription]:
        return dict(self.outputs)

    def describe(self) -> str:
        """A short multi-line description of the model's features."""
        lines = [f"{self.model_type} model (backend: {self.backend})", "inputs:"]
        lines += [f"  {d.summary()}" for d in self.inputs.values()]
        lines += ["outputs:"] + [f"  {d.summary()}" for d in self.outputs.values()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Model {self.model_type} inputs={self.input_names} outputs={self.output_names} backend={self.backend}>"

    # -- prediction -------------------------------------------------------------------------
    def predict(self, inputs: dict[str, Any], *, intermediate: bool = False) -> dict[str, Any]:
        """Run the model. Arrays/numbers for multi-array inputs, PIL images for image inputs.

        Returns numpy arrays for multi-array outputs, PIL images for image outputs, the label
        and the probability dict for classifiers. With `intermediate=True` (reference backend
        only) every intermediate blob is returned as well, keyed by its name.
        """
        if not isinstance(inputs, dict):
            raise InputError(f"predict() takes a dict of input name -> value, not {type(inputs).__name__}.")
        check_input_names(self.inputs, inputs)
        if self.backend == "native":
            if intermediate:
                raise ModelRuntimeError("intermediate=True needs the reference backend; the native Core ML "
                                        "backend only returns the model outputs.")
            return self._executor.predict(inputs)
        values = {name: prepare_input(self.inputs[name], value) for name, value in inputs.items()}
        raw = self._executor.run(values, intermediate=intermediate)
        return finish_outputs(self.outputs, raw, intermediate=intermediate)


def prepare_input(desc: FeatureDescription, value: Any) -> Any:
    """A checked Core ML-level input: [C, H, W] float32 for images, an array of the declared dtype."""
    if desc.kind == "image":
        return image_to_array(value, desc)
    if desc.kind == "multiArray":
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:
            raise InputError(f"Input {desc.name!r} must be an array, not {type(value).__name__}: {err}") from err
        if array.dtype == object or not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
            raise InputError(f"Input {desc.name!r} must hold numbers, not {array.dtype}.")
        if array.ndim == 0:
            array = array.reshape(1)
        check_array_shape(desc, tuple(array.shape))
        return array.astype(desc.dtype or np.float32, copy=False)
    if desc.kind == "double":
        return np.asarray(float(value), dtype=np.float64)
    if desc.kind == "int64":
        return np.asarray(int(value), dtype=np.int64)
    return value


def finish_outputs(outputs: dict[str, FeatureDescription], raw: dict[str, Any], *, intermediate: bool) -> dict[str, Any]:
    """Declared outputs converted to their feature types; other blobs kept if `intermediate`."""
    result: dict[str, Any] = {}
    for name, desc in outputs.items():
        if name not in raw:
            if desc.optional:
                continue
            raise ModelRuntimeError(f"The model did not produce its declared output {name!r}.")
        result[name] = convert_output(desc, raw[name])
    if intermediate:
        for name, value in raw.items():
            if name not in result:
                result[name] = value
    return result


def convert_output(desc: FeatureDescription, value: Any) -> Any:
    """One raw output value as coremltools' predict would return it."""
    if desc.kind == "image":
        return array_to_image(np.asarray(value), desc)
    if desc.kind == "multiArray":
        array = np.asarray(value)
        if array.ndim == 0:  # an MLMultiArray has rank >= 1: Core ML returns scalars as shape (1,)
            array = array.reshape(1)
        if desc.shape and not desc.is_flexible and array.shape != desc.shape and array.size == int(np.prod(desc.shape)):
            array = array.reshape(desc.shape)
        return array.astype(desc.dtype or np.float32, copy=False)
    if desc.kind == "double":
        return float(np.asarray(value).reshape(-1)[0])
    if desc.kind == "int64":
        return int(np.asarray(value).reshape(-1)[0])
    return value


def make_reference_executor(spec: Any, weights_dir: Path | None, inputs: dict[str, FeatureDescription],
                            outputs: dict[str, FeatureDescription]) -> Any:
    """The reference-runtime executor for `spec`'s model type."""
    kind = spec.WhichOneof("Type")
    if kind in NEURAL_NETWORK_TYPES:
        from modelbuild.runtime.neural_network import NeuralNetworkExecutor

        return NeuralNetworkExecutor(spec, inputs, outputs)
    if kind == "mlProgram":
        from modelbuild.runtime.program import ProgramExecutor

        return ProgramExecutor(spec, weights_dir, inputs)
    if kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
        from modelbuild.runtime.pipeline import PipelineExecutor

        return PipelineExecutor(spec, weights_dir)
    raise ModelRuntimeError(
        f"The reference runtime cannot run a {kind!r} model; it runs neuralNetwork, "
        f"neuralNetworkClassifier, neuralNetworkRegressor, mlProgram and pipeline models."
    )


def load(source: Any, *, backend: str = "auto", weights_dir: str | Path | None = None) -> Model:
    """Load a Core ML model from a path, a spec or an MLModel, for the given backend.

    An ML Program's weight files are checked against the program first (a truncated or
    overwritten weight.bin is refused here, with the file and offset, not deep in a prediction)."""
    from modelbuild.runtime.mil.blobs import blob_problems

    spec, found_weights, mlmodel, path = _read_source(source, weights_dir)
    problems = blob_problems(spec, found_weights)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ModelRuntimeError(f"The weights of {str(path or 'the model')!r} are damaged: {problems[0]}{more}.")
    return Model(spec, backend=backend, weights_dir=found_weights, mlmodel=mlmodel, path=path)
