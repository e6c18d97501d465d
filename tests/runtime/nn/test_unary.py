"""One-input elementwise layers against numpy/torch."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

SIMPLE = {
    "ceil": np.ceil, "floor": np.floor, "sign": np.sign, "round": np.round, "exp2": np.exp2,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "erf": np.vectorize(math.erf),
}
DOMAINS = {"asin": (-0.99, 0.99), "acos": (-0.99, 0.99), "atanh": (-0.99, 0.99), "acosh": (1.0, 4.0)}


@pytest.mark.ops(*SIMPLE)
@pytest.mark.parametrize("kind", list(SIMPLE))
def test_simple_unary_layers(run_layer, raw_layer, rng, kind):
    low, high = DOMAINS.get(kind, (-2.5, 2.5))
    x = rng.uniform(low, high, (2, 3, 4)).astype(np.float32)
    if kind == "round":
        x[0, 0, :] = [0.5, 1.5, -0.5, 2.5]  # halves go to even
    y = run_layer(raw_layer(kind), {"x": x})
    np.testing.assert_allclose(y, SIMPLE[kind](x.astype(np.float64)), rtol=2e-5, atol=1e-6)


@pytest.mark.ops("unary")
@pytest.mark.parametrize("mode, alpha, oracle", [
    ("sqrt", 1.0, lambda v: np.sqrt(v)),
    ("rsqrt", 1.0, lambda v: 1 / np.sqrt(v + 1e-6)),
    ("inverse", 1.0, lambda v: 1 / (v + 1e-6)),
    ("power", 3.0, lambda v: v**3),
    ("exp", 1.0, np.exp),
    ("log", 1.0, lambda v: np.log(v + 1e-6)),
    ("abs", 1.0, np.abs),
    ("threshold", 2.0, lambda v: np.maximum(v, 2.0)),
])
def test_unary_function_with_scale_and_shift(run_layer, rng, mode, alpha, oracle):
    x = rng.uniform(0.5, 3.0, (3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_unary("u", "x", "y", mode, alpha=alpha, shift=0.25, scale=1.5, epsilon=1e-6), {"x": x})
    np.testing.assert_allclose(y, oracle(1.5 * x.astype(np.float64) + 0.25), rtol=1e-5)


@pytest.mark.ops("unary")
@pytest.mark.parametrize("mode, oracle", [
    ("log", lambda v, eps: np.log(v + eps)),
    ("inverse", lambda v, eps: 1 / (v + eps)),
    ("rsqrt", lambda v, eps: 1 / np.sqrt(v + eps)),
])
def test_unary_epsilon_is_added_before_the_function(run_layer, rng, mode, oracle):
    x = rng.uniform(0.1, 3.0, (2, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_unary("u", "x", "y", mode, epsilon=0.5), {"x": x})
    np.testing.assert_allclose(y, oracle(x.astype(np.float64), 0.5), rtol=1e-5)


@pytest.mark.ops("clip")
def test_clip(run_layer, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32) * 3
    y = run_layer(lambda b: b.add_clip("c", "x", "y", min_value=-1.0, max_value=0.5), {"x": x})
    np.testing.assert_array_equal(y, np.clip(x, -1.0, 0.5))


@pytest.mark.ops("gelu")
@pytest.mark.parametrize("mode, approximate", [("EXACT", "none"), ("TANH_APPROXIMATION", "tanh")])
def test_gelu(run_layer, rng, mode, approximate):
    x = rng.standard_normal((3, 7)).astype(np.float32) * 2
    y = run_layer(lambda b: b.add_gelu("g", "x", "y", mode=mode), {"x": x})
    expected = torch.nn.functional.gelu(torch.from_numpy(x).double(), approximate=approximate).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.ops("gelu")
def test_gelu_sigmoid_approximation(run_layer, rng):
    x = rng.standard_normal(9).astype(np.float32)
    y = run_layer(lambda b: b.add_gelu("g", "x", "y", mode="SIGMOID_APPROXIMATION"), {"x": x})
    np.testing.assert_allclose(y, x / (1 + np.exp(-1.702 * x.astype(np.float64))), rtol=1e-5)
