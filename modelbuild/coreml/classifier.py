"""Classifier outputs: a model's logits become a Core ML predicted label and probability dictionary.

Given: a converted MIL function whose single output is the logits, shape
[1, N] or [N], and a `Classifier` with N labels.
Result: the output goes through `softmax` on its last axis (unless
`add_softmax=False`, for models that already output probabilities) and is
named `probabilities_output`; coremltools' `ClassifierConfig` then makes it a
classifier like `ct.convert(..., classifier_config=...)` does: a string output
`predicted_feature_name` with the top-1 label and a dictionary output
`probabilities_output` mapping every label to its probability (NeuralNetwork:
a `NeuralNetworkClassifier`; ML Program: a `classify` op).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.features import FEATURE_NAME, FeatureSpec

CLASSIFIER_SCOPE = "modelbuild_classifier"


@dataclass(frozen=True)
class Classifier:
    """Make the model a classifier with these labels (index i of the logits is labels[i])."""

    labels: tuple[str, ...]
    predicted_feature_name: str = "classLabel"
    probabilities_output: str = "classLabel_probs"
    add_softmax: bool = True


def check_classifier(classifier: Classifier, inputs: list[FeatureSpec], outputs: list[FeatureSpec]) -> None:
    """Raise CoreMLBuildError unless `classifier` fits a model with these declared features."""
    if not isinstance(classifier, Classifier):
        raise CoreMLBuildError(
            f"classifier must be a modelbuild.coreml.Classifier or None, not {type(classifier).__name__}."
        )
    labels = classifier.labels
    if isinstance(labels, str) or not labels or not all(isinstance(label, str) for label in labels):
        raise CoreMLBuildError(
            f"Classifier labels must be a non-empty sequence of strings; got {labels!r:.200}."
        )
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise CoreMLBuildError(f"Classifier labels must be unique; {duplicates[:5]!r} appear more than once.")
    names = (classifier.predicted_feature_name, classifier.probabilities_output)
    for name in names:
        if not isinstance(name, str) or not FEATURE_NAME.match(name):
            raise CoreMLBuildError(
                f"Classifier output name {name!r} is not valid: names must match [A-Za-z_][A-Za-z0-9_]*."
            )
    if names[0] == names[1] or set(names) & {f.name for f in inputs}:
        raise CoreMLBuildError(
            f"Classifier outputs {names[0]!r} and {names[1]!r} need two names different from each other "
            f"and from the inputs {[f.name for f in inputs]}."
        )
    if len(outputs) != 1:
        raise CoreMLBuildError(
            f"A classifier has one model output, the logits; {len(outputs)} outputs were declared "
            f"{[f.name for f in outputs]}."
        )
    (logits,) = outputs
    shape = tuple(logits.shape)
    if shape not in ((1, len(labels)), (len(labels),)) or logits.image is not None:
        raise CoreMLBuildError(
            f"Classifier output {logits.name!r} has shape {shape!r}; with {len(labels)} labels it must be "
            f"a multi-array of shape (1, {len(labels)}) or ({len(labels)},), one logit per label."
        )


def append_softmax(func: Any, classifier: Classifier) -> None:
    """Route the function's single output through softmax and name it `probabilities_output`."""
    from coremltools.converters.mil import Builder as mb

    from modelbuild.coreml.program_edits import edit_scopes  # numpy: recipe checks import modelbuild.coreml

    (output,) = func.outputs
    if not classifier.add_softmax:
        output.set_name(classifier.probabilities_output)
        return
    if output.name in (classifier.probabilities_output, classifier.predicted_feature_name):
        output.set_name(f"{output.name}_logits")  # the classifier's outputs need these names
    with func, mb.scope(*edit_scopes(func, CLASSIFIER_SCOPE)):
        probabilities = mb.softmax(x=output, axis=-1, name=classifier.probabilities_output)
    func.set_outputs([probabilities])


def classifier_config(ct, classifier: Classifier) -> Any:
    """The coremltools ClassifierConfig of `classifier`."""
    return ct.ClassifierConfig(
        list(classifier.labels), predicted_feature_name=classifier.predicted_feature_name,
        predicted_probabilities_output=classifier.probabilities_output,
    )


def check_classifier_spec(spec: Any, classifier: Classifier, description: str) -> None:
    """Check the spec's classifier outputs; give the probabilities output `description`."""
    outputs = {feature.name: feature for feature in spec.description.output}
    label_name, probabilities_name = classifier.predicted_feature_name, classifier.probabilities_output
    kinds = {name: feature.type.WhichOneof("Type") for name, feature in outputs.items()}
    expected = {label_name: "stringType", probabilities_name: "dictionaryType"}
    if kinds != expected or spec.description.predictedFeatureName != label_name:
        raise CoreMLBuildError(
            f"The converted classifier has outputs {kinds} instead of {expected}; "
            "this is a modelbuild bug, please report it."
        )
    outputs[label_name].shortDescription = "the most likely label"
    outputs[probabilities_name].shortDescription = description or "the probability of every label"
