"""The `activation` layer: every ActivationParams nonlinearity of NeuralNetwork.proto."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32
from modelbuild.runtime.registry import UnsupportedOpError


def _per_channel(layer: Layer, x: np.ndarray, p: Any, field: str) -> np.ndarray:
    """A length-C (or 1) parameter broadcast along axis -3 of `x`."""
    values = layer.weights(field, params=p)
    if values.size == 1:
        return values.reshape(())
    layer.need_rank(x, 3)
    if values.size != x.shape[-3]:
        raise layer.mismatch(f"{field} length vs channels (axis -3)", values.size, x.shape[-3])
    return values.reshape(-1, 1, 1)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0), x)


_SIMPLE: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "linear": lambda x, p: x * np.float32(p.alpha) + np.float32(p.beta),
    "ReLU": lambda x, p: np.maximum(x, np.float32(0)),
    "leakyReLU": lambda x, p: np.where(x >= 0, x, x * np.float32(p.alpha)),
    "thresholdedReLU": lambda x, p: np.where(x >= np.float32(p.alpha), x, np.float32(0)),
    "tanh": lambda x, p: np.tanh(x),
    "scaledTanh": lambda x, p: np.float32(p.alpha) * np.tanh(np.float32(p.beta) * x),
    "sigmoid": lambda x, p: 1 / (1 + np.exp(-x)),
    "sigmoidHard": lambda x, p: np.clip(np.float32(p.alpha) * x + np.float32(p.beta), 0, 1),
    "ELU": lambda x, p: np.where(x >= 0, x, np.float32(p.alpha) * np.expm1(np.minimum(x, 0))),
    "softsign": lambda x, p: x / (1 + np.abs(x)),
    "softplus": lambda x, p: _softplus(x),
}


# Recurrent layers take linear, scaledTanh and sigmoidHard with their parameters unset (coremltools'
# builder writes empty messages): alpha = beta = 0 then means the standard (alpha, beta) of MIL's
# activations, as coremltools' LSTM tests expect: linear passes x through, scaled tanh is tanh.
_RECURRENT_DEFAULTS: dict[str, tuple[float, float]] = {
    "linear": (1.0, 0.0), "scaledTanh": (1.0, 1.0), "sigmoidHard": (0.2, 0.5),
}


class _AlphaBeta:
    def __init__(self, alpha: float, beta: float) -> None:
        self.alpha, self.beta = alpha, beta


def recurrent_nonlinearity(params: Any, x: np.ndarray, where: str = "activation") -> np.ndarray:
    """A recurrent layer's ActivationParams applied to x; unset alpha/beta take their standard values."""
    kind = params.WhichOneof("NonlinearityType")
    if kind not in _SIMPLE:
        raise UnsupportedOpError(f"{where}: activation {kind!r} is not supported here; supported: {', '.join(sorted(_SIMPLE))}.")
    chosen = getattr(params, kind)
    if kind in _RECURRENT_DEFAULTS and chosen.alpha == 0 and chosen.beta == 0:
        chosen = _AlphaBeta(*_RECURRENT_DEFAULTS[kind])
    with np.errstate(over="ignore"):
        return f32(_SIMPLE[kind](f32(x), chosen))


@NN_LAYERS.register("activation")
def activation(layer: Layer, x: np.ndarray) -> np.ndarray:
    """y = f(x) for the nonlinearity chosen in ActivationParams."""
    kind = layer.params.WhichOneof("NonlinearityType")
    p = getattr(layer.params, kind) if kind else None
    x = f32(x)
    if kind in _SIMPLE:
        with np.errstate(over="ignore"):
            return f32(_SIMPLE[kind](x, p))
    if kind == "PReLU":
        alpha = _per_channel(layer, x, p, "alpha")
        return f32(np.where(x >= 0, x, alpha * x))
    if kind == "parametricSoftplus":
        alpha = _per_channel(layer, x, p, "alpha")
        beta = _per_channel(layer, x, p, "beta")
        return f32(alpha * _softplus(beta * x))
    raise UnsupportedOpError(
        f"{layer}: the activation {kind!r} is not supported. "
        f"Supported: {', '.join(sorted([*_SIMPLE, 'PReLU', 'parametricSoftplus']))}."
    )
