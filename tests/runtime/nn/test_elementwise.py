"""Elementwise layers with several inputs against numpy (broadcasting, scalars, errors)."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime import ShapeMismatchError

BROADCASTABLE = {
    "addBroadcastable": np.add,
    "subtractBroadcastable": np.subtract,
    "multiplyBroadcastable": np.multiply,
    "divideBroadcastable": np.divide,
    "floorDivBroadcastable": lambda a, b: np.floor(a / b),
    "modBroadcastable": np.mod,
    "powBroadcastable": lambda a, b: np.power(np.abs(a), b),
    "maxBroadcastable": np.maximum,
    "minBroadcastable": np.minimum,
}
COMPARISONS = {
    "equal": np.equal, "notEqual": np.not_equal, "lessThan": np.less, "lessEqual": np.less_equal,
    "greaterThan": np.greater, "greaterEqual": np.greater_equal,
}
LOGICAL = {"logicalAnd": np.logical_and, "logicalOr": np.logical_or, "logicalXor": np.logical_xor}


@pytest.mark.ops(*BROADCASTABLE)
@pytest.mark.parametrize("kind", list(BROADCASTABLE))
@pytest.mark.parametrize("shape_a, shape_b", [((2, 3, 4), (2, 3, 4)), ((2, 1, 4), (3, 1)), ((4,), (2, 3, 1))])
def test_broadcastable_binary(run_layer, raw_layer, rng, kind, shape_a, shape_b):
    a = rng.uniform(0.5, 3, shape_a).astype(np.float32) * rng.choice([-1, 1], shape_a)
    b = rng.uniform(0.5, 2, shape_b).astype(np.float32) * rng.choice([-1, 1], shape_b)
    if kind == "powBroadcastable":
        a = np.abs(a)
    y = run_layer(raw_layer(kind, ("a", "b")), {"a": a, "b": b})
    np.testing.assert_allclose(y, BROADCASTABLE[kind](a, b), rtol=1e-5)


@pytest.mark.ops("addBroadcastable")
def test_non_broadcastable_shapes_name_the_layer_and_both_shapes(run_layer, raw_layer):
    with pytest.raises(ShapeMismatchError, match=r"addBroadcastable layer 'addBroadcastable_layer': inputs are not broadcastable: got \[2, 3\] and \[4\]"):
        run_layer(raw_layer("addBroadcastable", ("a", "b")), {"a": np.zeros((2, 3)), "b": np.zeros(4)})


@pytest.mark.ops(*COMPARISONS)
@pytest.mark.parametrize("kind", list(COMPARISONS))
def test_comparisons_two_inputs_and_scalar(run_layer, raw_layer, kind):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    b = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    y = run_layer(raw_layer(kind, ("a", "b")), {"a": a, "b": b})
    np.testing.assert_array_equal(y, COMPARISONS[kind](a, b).astype(np.float32))
    y = run_layer(raw_layer(kind, ("a",), alpha=2.0), {"a": a})
    np.testing.assert_array_equal(y, COMPARISONS[kind](a, 2.0).astype(np.float32))


@pytest.mark.ops(*LOGICAL, "logicalNot")
@pytest.mark.parametrize("kind", list(LOGICAL))
def test_logical(run_layer, raw_layer, kind):
    a = np.array([0.0, 0.0, 1.0, -2.0], dtype=np.float32)
    b = np.array([0.0, 3.0, 0.0, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(run_layer(raw_layer(kind, ("a", "b")), {"a": a, "b": b}), LOGICAL[kind](a, b))
    np.testing.assert_array_equal(run_layer(raw_layer("logicalNot", ("a",)), {"a": a}), [1, 1, 0, 0])


@pytest.mark.ops("add", "multiply", "max", "min", "average")
@pytest.mark.parametrize("kind, mode, oracle", [
    ("add", "ADD", lambda xs: xs[0] + xs[1] + xs[2]),
    ("multiply", "MULTIPLY", lambda xs: xs[0] * xs[1] * xs[2]),
    ("max", "MAX", lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    ("min", "MIN", lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
    ("average", "AVE", lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
])
def test_old_variadic_layers_with_limited_broadcasting(run_layer, rng, kind, mode, oracle):
    xs = [rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 4, 5), (2, 3, 1, 1), (2, 1, 4, 5)]]
    y = run_layer(lambda b: b.add_elementwise("op", ["a", "b", "c"], "y", mode), dict(zip("abc", xs)))
    np.testing.assert_allclose(y, oracle(xs), rtol=1e-5, atol=1e-6)


@pytest.mark.ops("add", "multiply")
def test_old_add_and_multiply_with_one_input_use_alpha(run_layer, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_layer(lambda b: b.add_elementwise("op", ["x"], "y", "ADD", alpha=1.5), {"x": x}), x + 1.5)
    np.testing.assert_allclose(run_layer(lambda b: b.add_elementwise("op", ["x"], "y", "MULTIPLY", alpha=-2.0), {"x": x}), -2 * x)


@pytest.mark.ops("whereBroadcastable")
def test_where_broadcastable(run_layer, rng):
    cond = np.array([[1.0, 0.0, 2.0]], dtype=np.float32)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 1)).astype(np.float32)
    y = run_layer(lambda bl: bl.add_where_broadcastable("w", ["c", "a", "b"], "y"), {"c": cond, "a": a, "b": b})
    np.testing.assert_allclose(y, np.where(cond != 0, a, b))
