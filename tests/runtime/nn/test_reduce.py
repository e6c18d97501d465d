"""Reductions: the old `reduce` layer, reduce*ND and argMax/argMin against numpy."""
from __future__ import annotations

import numpy as np
import pytest


ND = {
    "reduceSum": np.sum, "reduceMean": np.mean, "reduceProd": np.prod, "reduceMax": np.max, "reduceMin": np.min,
    "reduceL1": lambda x, axis, keepdims: np.abs(x).sum(axis=axis, keepdims=keepdims),
    "reduceL2": lambda x, axis, keepdims: np.sqrt((x**2).sum(axis=axis, keepdims=keepdims)),
    "reduceSumSquare": lambda x, axis, keepdims: (x**2).sum(axis=axis, keepdims=keepdims),
    "reduceLogSum": lambda x, axis, keepdims: np.log(x.sum(axis=axis, keepdims=keepdims)),
    "reduceLogSumExp": lambda x, axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims)),
}


@pytest.mark.ops(*ND)
@pytest.mark.parametrize("kind", list(ND))
@pytest.mark.parametrize("axes, keep, reduce_all", [([1], True, False), ([-1, 0], False, False), ([], False, True)])
def test_reduce_nd(run_layer, raw_layer, rng, kind, axes, keep, reduce_all):
    x = rng.uniform(0.5, 1.5, (2, 3, 4)).astype(np.float64)
    y = run_layer(raw_layer(kind, axes=axes, keepDims=keep, reduceAll=reduce_all), {"x": x})
    axis = None if reduce_all else tuple(a % 3 for a in axes)
    expected = np.atleast_1d(ND[kind](x, axis=axis, keepdims=keep))
    np.testing.assert_allclose(y, expected, rtol=1e-5)


OLD_MODES = {
    "SUM": lambda x, a: x.sum(axis=a, keepdims=True),
    "AVG": lambda x, a: x.mean(axis=a, keepdims=True),
    "PROD": lambda x, a: x.prod(axis=a, keepdims=True),
    "LOGSUM": lambda x, a: np.log(x + 1e-6).sum(axis=a, keepdims=True),
    "SUMSQUARE": lambda x, a: (x**2).sum(axis=a, keepdims=True),
    "L1": lambda x, a: np.abs(x).sum(axis=a, keepdims=True),
    "L2": lambda x, a: np.sqrt((x**2).sum(axis=a, keepdims=True)),
    "MAX": lambda x, a: x.max(axis=a, keepdims=True),
    "MIN": lambda x, a: x.min(axis=a, keepdims=True),
}
OLD_AXES = {"CHW": (-3, -2, -1), "HW": (-2, -1), "C": (-3,), "H": (-2,), "W": (-1,)}


@pytest.mark.ops("reduce")
@pytest.mark.parametrize("mode", list(OLD_MODES))
@pytest.mark.parametrize("axis", list(OLD_AXES))
def test_old_reduce(run_layer, rng, mode, axis):
    x = rng.uniform(0.5, 1.5, (2, 3, 4, 5)).astype(np.float64)
    y = run_layer(lambda b: b.add_reduce("r", "x", "y", axis, mode, epsilon=1e-6), {"x": x})
    np.testing.assert_allclose(y, OLD_MODES[mode](x, OLD_AXES[axis]), rtol=1e-5)


@pytest.mark.ops("reduce")
def test_old_reduce_argmax(run_layer, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_reduce("r", "x", "y", "C", "ARGMAX"), {"x": x})
    np.testing.assert_array_equal(y, np.argmax(x, axis=1)[:, None])


@pytest.mark.ops("argMax", "argMin")
@pytest.mark.parametrize("kind, fn", [("argMax", np.argmax), ("argMin", np.argmin)])
@pytest.mark.parametrize("remove_dim", [False, True])
def test_arg_max_min(run_layer, raw_layer, rng, kind, fn, remove_dim):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    y = run_layer(raw_layer(kind, axis=-2, removeDim=remove_dim), {"x": x})
    expected = fn(x, axis=1)
    np.testing.assert_array_equal(y, expected if remove_dim else expected[:, None])
