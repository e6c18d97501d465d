"""MIL random ops: random_uniform, random_normal, random_bernoulli, random_categorical.

Core ML's generator is not public, so the values cannot match Core ML's; the
distributions do. A seed >= 0 makes a run reproducible (numpy's PCG64 seeded
with it); seed -1 (the default) draws fresh values every run.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext
from .reshaping import int_list


def generator(seed: Any) -> np.random.Generator:
    value = int(seed) if seed is not None else -1
    return np.random.default_rng(value if value >= 0 else None)


@MIL_OPS.register("random_uniform")
def random_uniform(op: OpContext, *, shape: Any, low: Any = 0.0, high: Any = 1.0, seed: Any = -1) -> np.ndarray:
    return generator(seed).uniform(float(low), float(high), int_list(shape))


@MIL_OPS.register("random_normal")
def random_normal(op: OpContext, *, shape: Any, mean: Any = 0.0, stddev: Any = 1.0, seed: Any = -1) -> np.ndarray:
    return generator(seed).normal(float(mean), float(stddev), int_list(shape))


@MIL_OPS.register("random_bernoulli")
def random_bernoulli(op: OpContext, *, shape: Any, prob: Any = 0.5, seed: Any = -1) -> np.ndarray:
    return (generator(seed).random(int_list(shape)) < float(prob)).astype(np.float32)


@MIL_OPS.register("random_categorical")
def random_categorical(
    op: OpContext, *, x: np.ndarray, mode: str = "logits", size: Any = 1, seed: Any = -1
) -> np.ndarray:
    """`size` class indices per distribution (the last dim of x holds logits or probabilities)."""
    if mode not in ("logits", "probs"):
        raise op.value_error(f"mode {mode!r} is not one of logits, probs")
    scores = np.asarray(x, np.float64)
    logits = scores if mode == "logits" else np.log(scores)
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    flat = probabilities.reshape(-1, probabilities.shape[-1])
    rng = generator(seed)
    draws = np.stack([rng.choice(flat.shape[1], size=int(size), p=row) for row in flat])
    return draws.reshape(scores.shape[:-1] + (int(size),))
