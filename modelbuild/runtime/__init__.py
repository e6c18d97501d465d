"""The Core ML reference runtime: run .mlmodel / .mlpackage files on any OS.

    from modelbuild import runtime
    model = runtime.load("FFDNet.mlmodel")          # backend="auto": native on macOS
    outputs = model.predict({"x": image, "sigma": np.array([0.1])})

NeuralNetwork layers live in `modelbuild.runtime.nn`, ML Program ops in
`modelbuild.runtime.mil`; both registries raise `UnsupportedOpError` naming the
missing op, and shape mismatches raise `ShapeMismatchError` naming the layer.
"""
from __future__ import annotations

from modelbuild.runtime.features import FeatureDescription, InputError
from modelbuild.runtime.model import Model, load
from modelbuild.runtime.registry import (
    ModelRuntimeError,
    OpRegistry,
    ShapeMismatchError,
    UnsupportedOpError,
)

__all__ = [
    "FeatureDescription",
    "InputError",
    "Model",
    "ModelRuntimeError",
    "OpRegistry",
    "ShapeMismatchError",
    "UnsupportedOpError",
    "load",
]
