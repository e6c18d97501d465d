"""Executor for ML Program (mlProgram) specs: hands the work to modelbuild.runtime.mil.

The MIL interpreter owns the program (preprocessing ops live inside it), so
this side only feeds numpy arrays: images as float32 [1, C, H, W] with raw
0..255 values, multi-arrays in their declared dtype, and a stateful model's
state arrays (`ModelState`), which the program updates in place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelbuild.runtime.executor import Executor
from modelbuild.runtime.feature_values import finish_outputs, prepare_inputs
from modelbuild.runtime.features import describe_features
from modelbuild.runtime.state import ModelState


class ProgramExecutor(Executor):
    """Runs an mlProgram spec with `modelbuild.runtime.mil.Program`."""

    def __init__(self, spec: Any, weights_dir: Path | None) -> None:
        # imported here: the MIL kernels import torch, which a NeuralNetwork or native run never needs
        from modelbuild.runtime.mil import Program

        self.inputs = describe_features(spec.description.input)
        self.outputs = describe_features(spec.description.output)
        self.program = Program.from_spec(spec, weights_dir)

    def make_state(self) -> ModelState:
        return ModelState(self.program.make_state(), owner=self)

    def predict(self, inputs: dict[str, Any], *, intermediate: bool = False,
                state: ModelState | None = None) -> dict[str, Any]:
        feeds: dict[str, np.ndarray] = dict(state.arrays_for(self)) if state is not None else {}
        for name, value in prepare_inputs(self.inputs, inputs).items():
            if self.inputs[name].kind == "image":
                dtype = np.float16 if self.inputs[name].color_space == "GRAYSCALE_FLOAT16" else np.float32
                feeds[name] = np.asarray(value, dtype=dtype)[None]
            else:
                feeds[name] = np.asarray(value)
        raw = self.program.run(feeds, intermediate=intermediate)
        return finish_outputs(self.outputs, dict(raw), intermediate=intermediate)
