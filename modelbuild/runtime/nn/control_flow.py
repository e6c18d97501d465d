"""Control-flow layers: branch, loop, loopBreak, loopContinue (NeuralNetwork.proto).

They run nested networks over the same blob scope, so the engine executes them
(`NeuralNetworkEngine._run_control`); this module registers their names and
holds the loop-exit signals.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer
from modelbuild.runtime.registry import ModelRuntimeError

CONTROL_FLOW = ("branch", "loop", "loopBreak", "loopContinue")
FALSE_THRESHOLD = 1e-6  # "a value close to 0.0f is treated as False"


class LoopBreak(Exception):
    """Raised by a loopBreak layer; the innermost loop stops."""


class LoopContinue(Exception):
    """Raised by a loopContinue layer; the innermost loop starts its next iteration."""


def is_true(value: Any) -> bool:
    """A scalar condition blob as NeuralNetwork.proto reads it."""
    return bool(abs(float(np.asarray(value).reshape(-1)[0])) > FALSE_THRESHOLD)


@NN_LAYERS.register(*CONTROL_FLOW)
def control_flow(layer: Layer, *inputs: np.ndarray) -> None:
    """Placeholder: the engine runs control flow itself, since it needs the blob scope."""
    if layer.kind == "loopBreak":
        raise LoopBreak
    if layer.kind == "loopContinue":
        raise LoopContinue
    raise ModelRuntimeError(f"{layer} must be run by NeuralNetworkEngine, not called as a kernel.")
