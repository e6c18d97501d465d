"""Blob-creating layers: constants, fills, ranges, broadcasts."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime import ShapeMismatchError


@pytest.mark.ops("loadConstant", "add")
def test_load_constant_is_rank5(run_layer, rng):
    const = rng.standard_normal((2, 3, 4)).astype(np.float32)

    def add(b):
        b.add_load_constant("c", "const", const, [2, 3, 4])
        b.add_elementwise("sum", ["x", "const"], "y", "ADD")

    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = run_layer(add, {"x": x}, rank5=True)
    np.testing.assert_allclose(y.reshape(2, 3, 4), x + const)


@pytest.mark.ops("loadConstantND", "addBroadcastable")
def test_load_constant_nd(run_layer, rng):
    const = rng.standard_normal((3, 1)).astype(np.float32)

    def add(b):
        b.add_load_constant_nd("c", "const", const, [3, 1])
        b.add_add_broadcastable("sum", ["x", "const"], "y")

    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_layer(add, {"x": x}), x + const)


@pytest.mark.ops("fillLike", "fillStatic", "fillDynamic")
def test_fills(run_layer):
    x = np.zeros((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(run_layer(lambda b: b.add_fill_like("f", "x", "y", value=2.5), {"x": x}), np.full((2, 3), 2.5))
    np.testing.assert_array_equal(run_layer(lambda b: b.add_fill_dynamic("f", "x", "y", value=-1.0), {"x": np.array([3.0, 1.0, 2.0])}),
                                  np.full((3, 1, 2), -1.0))

    def add(b):
        b.add_fill_static("f", "filled", [4, 2], value=7.0)
        b.add_add_broadcastable("s", ["x", "filled"], "y")

    np.testing.assert_array_equal(run_layer(add, {"x": np.zeros((1, 2))}), np.full((4, 2), 7.0))


@pytest.mark.ops("rangeStatic", "rangeDynamic", "addBroadcastable")
def test_ranges(run_layer):
    def add(b):
        b.add_range_static("r", "range", end=5, start=1, step=1.5)
        b.add_add_broadcastable("s", ["x", "range"], "y")

    np.testing.assert_allclose(run_layer(add, {"x": np.zeros(3)}), np.arange(1, 5, 1.5))
    y = run_layer(lambda b: b.add_range_dynamic("r", ["end", "start"], "y", step=2), {"end": np.array([9.0]), "start": np.array([2.0])})
    np.testing.assert_allclose(y, np.arange(2, 9, 2))


@pytest.mark.ops("broadcastToStatic", "broadcastToLike", "broadcastToDynamic")
def test_broadcasts(run_layer, rng):
    x = rng.standard_normal((3, 1)).astype(np.float32)
    np.testing.assert_array_equal(run_layer(lambda b: b.add_broadcast_to_static("b", "x", "y", [2, 3, 4]), {"x": x}),
                                  np.broadcast_to(x, (2, 3, 4)))
    np.testing.assert_array_equal(run_layer(lambda b: b.add_broadcast_to_like("b", ["x", "r"], "y"), {"x": x, "r": np.zeros((3, 5))}),
                                  np.broadcast_to(x, (3, 5)))
    np.testing.assert_array_equal(run_layer(lambda b: b.add_broadcast_to_dynamic("b", ["x", "s"], "y"), {"x": x, "s": np.array([3.0, 2.0])}),
                                  np.broadcast_to(x, (3, 2)))
    with pytest.raises(ShapeMismatchError, match=r"broadcastable to \[4, 4\]"):
        run_layer(lambda b: b.add_broadcast_to_static("b", "x", "y", [4, 4]), {"x": x})
