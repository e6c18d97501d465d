"""Which executor runs a spec: the one place that looks at the backend and the model type.

backend "reference" runs NeuralNetwork specs (`modelbuild.runtime.nn`), ML Programs
(`modelbuild.runtime.mil`) and pipelines of them; "native" hands the model to Apple's
Core ML through coremltools (macOS only); "auto" is native on macOS, else reference.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelbuild.runtime.executor import Executor
from modelbuild.runtime.native import NativeExecutor
from modelbuild.runtime.pipeline import PIPELINE_TYPES, PipelineExecutor
from modelbuild.runtime.program import ProgramExecutor
from modelbuild.runtime.registry import ModelRuntimeError

BACKENDS = ("auto", "reference", "native")
NEURAL_NETWORK_TYPES = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")


def resolve_backend(backend: str) -> str:
    """'auto' -> 'native' on macOS, else 'reference'; anything else is checked."""
    if backend not in BACKENDS:
        raise ModelRuntimeError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if backend == "auto":
        return "native" if sys.platform == "darwin" else "reference"
    return backend


def make_executor(spec: Any, backend: str, *, weights_dir: Path | None = None, mlmodel: Any = None,
                  path: Path | None = None) -> Executor:
    """The executor of a resolved `backend` ('reference' or 'native') for `spec`."""
    if backend == "native":
        return NativeExecutor(spec, mlmodel=mlmodel, path=path, weights_dir=weights_dir)
    return reference_executor(spec, weights_dir)


def reference_executor(spec: Any, weights_dir: Path | None) -> Executor:
    """The reference-runtime executor for `spec`'s model type (a pipeline's stages get theirs from here too)."""
    kind = spec.WhichOneof("Type")
    if kind in NEURAL_NETWORK_TYPES:
        # imported here: the NeuralNetwork kernels import torch, which an ML Program or native run never needs
        from modelbuild.runtime.neural_network import NeuralNetworkExecutor

        return NeuralNetworkExecutor(spec)
    if kind == "mlProgram":
        return ProgramExecutor(spec, weights_dir)
    if kind in PIPELINE_TYPES:
        return PipelineExecutor(spec, weights_dir, stage_executor=reference_executor)
    raise ModelRuntimeError(
        f"The reference runtime cannot run a {kind!r} model; it runs neuralNetwork, "
        f"neuralNetworkClassifier, neuralNetworkRegressor, mlProgram and pipeline models."
    )
