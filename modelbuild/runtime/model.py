"""`load()` and `Model`: run a Core ML model with a `predict` like coremltools' MLModel.

`load(source, backend=...)` accepts a path (.mlmodel / .mlpackage), a Model
spec (coremltools.proto.Model_pb2.Model) or a coremltools MLModel. Which
executor runs it (the reference NeuralNetwork engine, ML Program interpreter or
pipeline, or native Core ML on macOS) is `modelbuild.runtime.backends`' choice;
every executor keeps the contract of `modelbuild.runtime.executor`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.runtime.backends import make_executor, resolve_backend
from modelbuild.runtime.executor import Executor
from modelbuild.runtime.features import FeatureDescription, InputError, check_input_names, describe_features
from modelbuild.runtime.quiet import quiet_coremltools
from modelbuild.runtime.registry import ModelRuntimeError


def _read_source(source: Any, weights_dir: str | Path | None) -> tuple[Any, Path | None, Any, Path | None]:
    """(spec, weights_dir, mlmodel or None, path or None) from any accepted source."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ModelRuntimeError(f"No Core ML model at {str(path)!r}.")
        ct = quiet_coremltools()
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
        self.states: dict[str, FeatureDescription] = describe_features(spec.description.state)
        self.backend = resolve_backend(backend)
        self.executor: Executor = make_executor(spec, self.backend, weights_dir=weights_dir, mlmodel=mlmodel,
                                                path=path)

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
    def make_state(self) -> Any:
        """A fresh state (zeros) for a stateful model, as MLModel.make_state; pass it to every `predict`."""
        if not self.states:
            raise ModelRuntimeError(
                "The model declares no state (its description has no state features, which only "
                "iOS18 stateful models have), so make_state() has nothing to make."
            )
        return self.executor.make_state()

    def predict(self, inputs: dict[str, Any], *, state: Any = None, intermediate: bool = False) -> dict[str, Any]:
        """Run the model. Arrays/numbers for multi-array inputs, PIL images for image inputs.

        Returns numpy arrays for multi-array outputs, PIL images for image outputs, the label
        and the probability dict for classifiers. A stateful model needs `state`, made by this
        model's `make_state()`; the prediction reads and updates it. With `intermediate=True`
        (reference backend only) every intermediate blob is returned as well, keyed by its name.
        """
        if not isinstance(inputs, dict):
            raise InputError(f"predict() takes a dict of input name -> value, not {type(inputs).__name__}.")
        check_input_names(self.inputs, inputs)
        if self.states and state is None:
            raise InputError(
                f"The model is stateful (state {', '.join(map(repr, self.states))}); pass "
                "state=model.make_state() to predict, and the same state again to continue from it."
            )
        if state is not None and not self.states:
            raise InputError("The model declares no state, so predict() takes no state=; leave it out.")
        return self.executor.predict(inputs, intermediate=intermediate, state=state)


def load(source: Any, *, backend: str = "auto", weights_dir: str | Path | None = None) -> Model:
    """Load a Core ML model from a path, a spec or an MLModel, for the given backend.

    An ML Program's weight files are checked against the program first (a truncated or
    overwritten weight.bin is refused here, with the file and offset, not deep in a prediction)."""
    from modelbuild.runtime.mil.blobs import blob_problems  # here: the mil package imports its kernels (torch)

    spec, found_weights, mlmodel, path = _read_source(source, weights_dir)
    problems = blob_problems(spec, found_weights)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ModelRuntimeError(f"The weights of {str(path or 'the model')!r} are damaged: {problems[0]}{more}.")
    return Model(spec, backend=backend, weights_dir=found_weights, mlmodel=mlmodel, path=path)
