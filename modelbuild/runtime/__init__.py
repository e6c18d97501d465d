"""The Core ML reference runtime: run .mlmodel / .mlpackage files on any OS.

    from modelbuild import runtime
    model = runtime.load("FFDNet.mlmodel")          # backend="auto": native on macOS
    outputs = model.predict({"x": image, "sigma": np.array([0.1])})

This module is the runtime's whole public interface: the rest of modelbuild
imports these names from `modelbuild.runtime` and nothing from its sub-modules,
and the runtime imports nothing of modelbuild outside this package (README.md).
Each name loads its module when first used, so `import modelbuild.runtime` costs
nothing (the build system reads `source_digest()` while it creates tasks).

NeuralNetwork layers live in `modelbuild.runtime.nn`, ML Program ops in
`modelbuild.runtime.mil`; both registries raise `UnsupportedOpError` naming the
missing op, and shape mismatches raise `ShapeMismatchError` naming the layer.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module (under modelbuild.runtime) that defines it
_EXPORTS = {
    "load": "model",
    "Model": "model",
    "ModelState": "state",
    "FeatureDescription": "features",
    "InputError": "features",
    "ModelRuntimeError": "registry",
    "OpRegistry": "registry",
    "ShapeMismatchError": "registry",
    "UnsupportedOpError": "registry",
    "blob_problems": "mil.blobs",
    "Program": "mil",
    "PredictCliError": "predict_cli",
    "predict_command": "predict_cli",
    "quiet_coremltools": "quiet",
    "source_digest": "source",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from modelbuild.runtime.features import FeatureDescription, InputError
    from modelbuild.runtime.mil import Program
    from modelbuild.runtime.mil.blobs import blob_problems
    from modelbuild.runtime.model import Model, load
    from modelbuild.runtime.predict_cli import PredictCliError, predict_command
    from modelbuild.runtime.quiet import quiet_coremltools
    from modelbuild.runtime.registry import ModelRuntimeError, OpRegistry, ShapeMismatchError, UnsupportedOpError
    from modelbuild.runtime.source import source_digest
    from modelbuild.runtime.state import ModelState


def __getattr__(name: str) -> Any:
    """Import the module of a public name on first use, and keep the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
