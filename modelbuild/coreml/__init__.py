"""The Core ML conversion stage: ONNX or torch -> .mlmodel / .mlpackage with the declared interface.

`convert` turns a model into a `coremltools.models.MLModel` whose inputs,
outputs (names, shapes, FLOAT32 multi-arrays or images with scale/bias) and
metadata are exactly as declared; `save_mlmodel` writes it atomically;
`package_digest` is a stable content hash of the written artifact.
"""
from __future__ import annotations

from modelbuild.coreml.artifacts import package_digest, save_mlmodel
from modelbuild.coreml.classifier import Classifier
from modelbuild.coreml.convert import convert
from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.features import FeatureSpec, ImageInput, ImageOutput, Metadata

__all__ = [
    "Classifier",
    "CoreMLBuildError",
    "FeatureSpec",
    "ImageInput",
    "ImageOutput",
    "Metadata",
    "convert",
    "package_digest",
    "save_mlmodel",
]
