"""The native executor: Apple's Core ML through coremltools.models.MLModel.predict (macOS only)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelbuild.runtime.executor import Executor
from modelbuild.runtime.quiet import quiet_coremltools
from modelbuild.runtime.registry import ModelRuntimeError


class NativeExecutor(Executor):
    """Predicts with coremltools' MLModel; refuses to start anywhere but macOS."""

    def __init__(self, spec: Any, *, mlmodel: Any = None, path: Path | None = None,
                 weights_dir: Path | None = None) -> None:
        if sys.platform != "darwin":
            raise ModelRuntimeError(
                f"The native backend runs Apple's Core ML and needs macOS; this is {sys.platform}. "
                "Use backend='reference' (or 'auto') to run the model with the reference runtime."
            )
        ct = quiet_coremltools()
        if mlmodel is not None:
            self.mlmodel = mlmodel
        elif path is not None:
            self.mlmodel = ct.models.MLModel(str(path))
        else:
            self.mlmodel = ct.models.MLModel(spec, weights_dir=str(weights_dir) if weights_dir else None)

    def make_state(self) -> Any:
        """Core ML's own MLState."""
        return self.mlmodel.make_state()

    def predict(self, inputs: dict[str, Any], *, intermediate: bool = False, state: Any = None) -> dict[str, Any]:
        if intermediate:
            raise ModelRuntimeError("intermediate=True needs the reference backend; the native Core ML "
                                    "backend only returns the model outputs.")
        return dict(self.mlmodel.predict(inputs, state=state))
