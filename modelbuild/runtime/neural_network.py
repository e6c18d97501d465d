"""Executor for NeuralNetwork, NeuralNetworkClassifier and NeuralNetworkRegressor specs.

Wraps `modelbuild.runtime.nn.NeuralNetworkEngine` and adds what the model type
means: a classifier turns its probability blob into the predicted label and the
label -> probability dict (NeuralNetwork.proto's NeuralNetworkClassifier).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from modelbuild.runtime.executor import Executor
from modelbuild.runtime.feature_values import finish_outputs, prepare_inputs
from modelbuild.runtime.features import describe_features
from modelbuild.runtime.nn import NeuralNetworkEngine
from modelbuild.runtime.registry import ModelRuntimeError


class NeuralNetworkExecutor(Executor):
    """Runs one NeuralNetwork-family spec with `NeuralNetworkEngine`."""

    def __init__(self, spec: Any) -> None:
        self.kind = spec.WhichOneof("Type")
        self.network = getattr(spec, self.kind)
        self.inputs = describe_features(spec.description.input)
        self.outputs = describe_features(spec.description.output)
        self.engine = NeuralNetworkEngine(self.network, self.inputs)
        description = spec.description
        self.predicted_feature = description.predictedFeatureName
        self.probabilities_feature = description.predictedProbabilitiesName
        self.labels: list[Any] = []
        if self.kind == "neuralNetworkClassifier":
            which = self.network.WhichOneof("ClassLabels")
            if which == "stringClassLabels":
                self.labels = list(self.network.stringClassLabels.vector)
            elif which == "int64ClassLabels":
                self.labels = [int(v) for v in self.network.int64ClassLabels.vector]
            self.probability_blob = self._find_probability_blob()

    def _find_probability_blob(self) -> str:
        named = self.network.labelProbabilityLayerName
        if named:
            return named
        if self.probabilities_feature and any(self.probabilities_feature in layer.output for layer in self.network.layers):
            return self.probabilities_feature
        if not self.network.layers:
            raise ModelRuntimeError("The classifier has no layers to take probabilities from.")
        return self.network.layers[-1].output[0]

    def predict(self, inputs: dict[str, Any], *, intermediate: bool = False, state: Any = None) -> dict[str, Any]:
        blobs = self._run(prepare_inputs(self.inputs, inputs), intermediate=intermediate)
        return finish_outputs(self.outputs, blobs, intermediate=intermediate)

    def _run(self, values: dict[str, Any], *, intermediate: bool) -> dict[str, Any]:
        """The engine's blobs, with a classifier's label and probability dict added."""
        keep = set(self.outputs)
        if self.kind == "neuralNetworkClassifier":
            keep.add(self.probability_blob)
        blobs = self.engine.run(values, intermediate=intermediate, keep=keep)
        if self.kind != "neuralNetworkClassifier":
            return blobs
        if self.probability_blob not in blobs:
            raise ModelRuntimeError(f"The classifier's probability blob {self.probability_blob!r} was never produced.")
        probabilities = np.asarray(blobs[self.probability_blob], dtype=np.float64).reshape(-1)
        if probabilities.size != len(self.labels):
            raise ModelRuntimeError(
                f"The classifier has {len(self.labels)} class labels but its probability blob "
                f"{self.probability_blob!r} holds {probabilities.size} values."
            )
        result = dict(blobs)
        if self.predicted_feature:
            result[self.predicted_feature] = self.labels[int(np.argmax(probabilities))]
        if self.probabilities_feature:
            result[self.probabilities_feature] = {label: float(p) for label, p in zip(self.labels, probabilities)}
        return result
