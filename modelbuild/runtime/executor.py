"""The one contract every executor keeps, whatever runs the model.

An executor is made for one model spec and answers `predict` as coremltools'
`MLModel.predict` does: feature values in (numpy arrays and numbers for
multi-arrays, PIL images for image inputs), feature values out (arrays, PIL
images, a classifier's label and probability dict); a stateful (iOS18) model's
`make_state()` and `predict(inputs, state=...)` as MLModel's. `Model` checks the
input names and hands the rest to its executor; which executor runs a spec is
decided once, in `modelbuild.runtime.backends`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from modelbuild.runtime.registry import ModelRuntimeError


class Executor(ABC):
    """Runs one loaded model: the NeuralNetwork engine, the ML Program interpreter, a pipeline, native Core ML."""

    @abstractmethod
    def predict(self, inputs: dict[str, Any], *, intermediate: bool = False, state: Any = None) -> dict[str, Any]:
        """The model's declared outputs for `inputs` (whose names the caller has checked).

        With `intermediate=True` every intermediate value is returned as well, keyed by its name;
        an executor that cannot see inside the model raises `ModelRuntimeError` instead.
        `state` is what this executor's `make_state()` returned, for a stateful model (the caller
        checks that a stateful model gets one and a stateless model none); it is updated in place.
        """

    def make_state(self) -> Any:
        """A fresh state for a stateful (iOS18) model; executors of models that cannot hold state refuse."""
        raise ModelRuntimeError(f"{type(self).__name__} runs models without state; make_state() has nothing to make.")
