"""The Core ML conversion stage: ONNX or torch -> .mlmodel / .mlpackage with the declared interface.

`convert` turns a model into a `coremltools.models.MLModel` whose inputs,
outputs (names, shapes, FLOAT32 multi-arrays or images with scale/bias and an
optional per-channel scale; optionally flexible input shapes, optionally a
classifier's label and probabilities) and metadata are exactly as declared;
`flexible_support_problem` says beforehand whether a route can make the
declared inputs flexible; `save_mlmodel` writes it atomically;
`package_digest` is a stable content hash of the written artifact.
"""
from __future__ import annotations

from modelbuild.coreml.artifacts import package_digest, save_mlmodel
from modelbuild.coreml.classifier import Classifier
from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.features import FeatureSpec, ImageInput, ImageOutput, Metadata
from modelbuild.coreml.flexible import Enumerated, Flexible, Range, flexible_support_problem

__all__ = [
    "Classifier",
    "CoreMLBuildError",
    "Enumerated",
    "Flexible",
    "FeatureSpec",
    "ImageInput",
    "ImageOutput",
    "Metadata",
    "Range",
    "convert",
    "flexible_support_problem",
    "package_digest",
    "save_mlmodel",
]


def __getattr__(name: str):
    """`convert` is imported on first use: it pulls in numpy and the converters' glue, which recipe checks and
    task creation (they import this package for `flexible_support_problem`) never need."""
    if name == "convert":
        from modelbuild.coreml.conversion import convert

        return convert
    raise AttributeError(f"module 'modelbuild.coreml' has no attribute {name!r}")
