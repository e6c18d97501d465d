"""Executor for ML Program (mlProgram) specs: hands the work to modelbuild.runtime.mil.

The MIL interpreter owns the program (preprocessing ops live inside it), so
this side only feeds numpy arrays: images as float32 [1, C, H, W] with raw
0..255 values, multi-arrays in their declared dtype.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelbuild.runtime.features import FeatureDescription


class ProgramExecutor:
    """Runs an mlProgram spec with `modelbuild.runtime.mil.Program`."""

    def __init__(self, spec: Any, weights_dir: Path | None, inputs: dict[str, FeatureDescription]) -> None:
        from modelbuild.runtime.mil import Program

        self.inputs = inputs
        self.program = Program.from_spec(spec, weights_dir)

    def run(self, values: dict[str, Any], *, intermediate: bool = False) -> dict[str, Any]:
        feeds: dict[str, np.ndarray] = {}
        for name, value in values.items():
            desc = self.inputs.get(name)
            if desc is not None and desc.kind == "image":
                dtype = np.float16 if desc.color_space == "GRAYSCALE_FLOAT16" else np.float32
                feeds[name] = np.asarray(value, dtype=dtype)[None]
            else:
                feeds[name] = np.asarray(value)
        return dict(self.program.run(feeds, intermediate=intermediate))
