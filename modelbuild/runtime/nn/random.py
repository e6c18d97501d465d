"""Random layers: random{Normal,Uniform,Bernoulli}{Like,Static,Dynamic}, categoricalDistribution.

Core ML's random streams cannot be reproduced, so these draw from numpy's
generator seeded with the layer's `seed` (fresh entropy when seed is -1): the
shape and the distribution match Core ML, the individual values do not.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32

Sampler = Callable[[np.random.Generator, Any, tuple[int, ...]], np.ndarray]

_SAMPLERS: dict[str, Sampler] = {
    "randomNormal": lambda rng, p, shape: rng.normal(p.mean, p.stdDev, shape),
    "randomUniform": lambda rng, p, shape: rng.uniform(p.minVal, p.maxVal, shape),
    "randomBernoulli": lambda rng, p, shape: (rng.uniform(0, 1, shape) < p.prob).astype(np.float32),
}


def _generator(layer: Layer) -> np.random.Generator:
    seed = int(layer.params.seed)
    return np.random.default_rng(None if seed == -1 else seed)


def _register(family: str, sampler: Sampler) -> None:
    def like(layer: Layer, x: np.ndarray) -> np.ndarray:
        return f32(sampler(_generator(layer), layer.params, np.shape(x)))

    def static(layer: Layer) -> np.ndarray:
        return f32(sampler(_generator(layer), layer.params, tuple(int(d) for d in layer.params.outputShape)))

    def dynamic(layer: Layer, shape: np.ndarray) -> np.ndarray:
        dims = tuple(int(d) for d in np.asarray(shape).reshape(-1))
        return f32(sampler(_generator(layer), layer.params, dims))

    for suffix, kernel, doc in (("Like", like, "shaped like the input"), ("Static", static, "of outputShape"),
                                ("Dynamic", dynamic, "whose shape is the input's values")):
        kernel.__name__ = f"{family}{suffix}"
        kernel.__doc__ = f"Samples of {family[6:].lower()} distribution {doc}."
        NN_LAYERS.register(f"{family}{suffix}")(kernel)


for _family, _sampler in _SAMPLERS.items():
    _register(_family, _sampler)


@NN_LAYERS.register("categoricalDistribution")
def categorical_distribution(layer: Layer, x: np.ndarray) -> np.ndarray:
    """numSamples class indices per row of the last axis (logits / temperature, or probabilities)."""
    p = layer.params
    data = np.asarray(x, dtype=np.float64)
    if p.isLogits:
        scaled = data / (p.temperature or 1.0)
        probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    else:
        probs = np.maximum(data, 0.0) + (p.eps or 1e-10)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    rows = probs.reshape(-1, probs.shape[-1])
    rng = _generator(layer)
    samples = np.stack([rng.choice(rows.shape[1], size=int(p.numSamples), p=row) for row in rows])
    return f32(samples.reshape(data.shape[:-1] + (int(p.numSamples),)))
