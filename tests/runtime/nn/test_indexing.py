"""Index-driven layers against numpy: scatter*, gatherND, topK, argSort, oneHot, cumSum, ..."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.ops("scatter")
@pytest.mark.parametrize("mode, op", [("UPDATE", lambda a, b: b), ("ADD", np.add), ("MUL", np.multiply), ("MAX", np.maximum)])
def test_scatter_along_an_axis(run_layer, rng, mode, op):
    container = rng.standard_normal((4, 3)).astype(np.float32)
    updates = rng.standard_normal((4, 2)).astype(np.float32)
    indices = np.array([2, -3], dtype=np.float32)
    y = run_layer(lambda b: b.add_scatter("s", ["c", "i", "u"], "y", axis=1, mode=mode), {"c": container, "i": indices, "u": updates})
    expected = container.copy()
    for k, index in enumerate([2, 0]):
        expected[:, index] = op(expected[:, index], updates[:, k])
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.ops("scatter", "gather")
def test_scatter_with_multi_dimensional_indices_inverts_gather(run_layer, rng):
    params = rng.standard_normal((3, 5, 2)).astype(np.float32)
    indices = np.array([[4, -1], [0, 2]], dtype=np.float32)  # 4 and -1 are the same row: both write equal values

    def add(builder):
        builder.add_gather("g", ["p", "i"], "updates", axis=1)
        builder.add_elementwise("scale", ["updates"], "updates2", "MULTIPLY", alpha=2.0)
        builder.add_scatter("s", ["p", "i", "updates2"], "y", axis=1, mode="UPDATE")

    y = run_layer(add, {"p": params, "i": indices})
    expected = params.copy()
    expected[:, [4, 0, 2]] *= 2
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.ops("scatterND", "gatherND")
def test_scatter_nd_and_gather_nd(run_layer, rng):
    data = rng.standard_normal((3, 4, 2)).astype(np.float32)
    indices = np.array([[0, 1], [2, 3]], dtype=np.float32)
    updates = rng.standard_normal((2, 2)).astype(np.float32)
    y = run_layer(lambda b: b.add_scatter_nd("s", ["c", "i", "u"], "y", mode="ADD"), {"c": data, "i": indices, "u": updates})
    expected = data.copy()
    expected[0, 1] += updates[0]
    expected[2, 3] += updates[1]
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    y = run_layer(lambda b: b.add_gather_nd("g", ["d", "i"], "y"), {"d": data, "i": indices})
    np.testing.assert_array_equal(y, np.stack([data[0, 1], data[2, 3]]))


@pytest.mark.ops("scatterAlongAxis")
def test_scatter_along_axis(run_layer, rng):
    data = np.zeros((2, 3), dtype=np.float32)
    indices = np.array([[2, 0], [1, 1]], dtype=np.float32)
    updates = np.array([[5.0, 6.0], [7.0, 8.0]], dtype=np.float32)
    y = run_layer(lambda b: b.add_scatter_along_axis("s", ["c", "i", "u"], "y", axis=1, mode="ADD"),
                  {"c": data, "i": indices, "u": updates})
    np.testing.assert_array_equal(y, [[6.0, 0.0, 5.0], [0.0, 15.0, 0.0]])


@pytest.mark.ops("topK")
@pytest.mark.parametrize("bottom", [False, True])
def test_top_k(run_layer, rng, bottom):
    x = rng.permutation(20).reshape(4, 5).astype(np.float32)
    values, indices = run_layer(lambda b: b.add_topk("t", ["x"], ["v", "i"], k=3, axis=1, use_bottom_k=bottom),
                                {"x": x}, outputs=("v", "i"))
    order = np.argsort(x if bottom else -x, axis=1)[:, :3]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(values, np.take_along_axis(x, order, axis=1))


@pytest.mark.ops("argSort")
@pytest.mark.parametrize("descending", [False, True])
def test_arg_sort(run_layer, rng, descending):
    x = rng.standard_normal((3, 6)).astype(np.float32)
    y = run_layer(lambda b: b.add_argsort("a", "x", "y", axis=-1, descending=descending), {"x": x})
    np.testing.assert_array_equal(y, np.argsort(-x if descending else x, axis=-1))


@pytest.mark.ops("oneHot")
@pytest.mark.parametrize("axis", [-1, 0])
def test_one_hot(run_layer, axis):
    idx = np.array([[0, 2], [3, 1]], dtype=np.float32)
    y = run_layer(lambda b: b.add_one_hot("o", ["x"], "y", one_hot_vector_size=4, axis=axis, on_value=5.0, off_value=-1.0), {"x": idx})
    expected = np.where(np.eye(4)[idx.astype(int)] == 1, 5.0, -1.0)
    np.testing.assert_array_equal(y, np.moveaxis(expected, -1, axis))


@pytest.mark.ops("cumSum")
@pytest.mark.parametrize("reverse, exclusive", [(False, False), (True, False), (False, True), (True, True)])
def test_cum_sum(run_layer, rng, reverse, exclusive):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_cumsum("c", ["x"], "y", axis=1, reverse=reverse, exclusive=exclusive), {"x": x})
    data = x[:, ::-1] if reverse else x
    expected = np.cumsum(data, axis=1) - (data if exclusive else 0)
    np.testing.assert_allclose(y, expected[:, ::-1] if reverse else expected, rtol=1e-5, atol=1e-6)


@pytest.mark.ops("whereNonZero")
def test_where_non_zero(run_layer):
    x = np.array([[0.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(run_layer(lambda b: b.add_where_nonzero("w", "x", "y"), {"x": x}), [[0, 1], [1, 0]])


@pytest.mark.ops("matrixBandPart", "lowerTriangular", "upperTriangular")
def test_triangular_masks(run_layer, rng):
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_matrix_band_part("m", "x", "y", num_lower=1, num_upper=2), {"x": x})
    np.testing.assert_array_equal(y, np.triu(np.tril(x, 2), -1))
    np.testing.assert_array_equal(run_layer(lambda b: b.add_matrix_band_part("m", "x", "y", num_lower=-1, num_upper=0), {"x": x}), np.tril(x))
    np.testing.assert_array_equal(run_layer(lambda b: b.add_lower_triangular("l", "x", "y", k=-1), {"x": x}), np.tril(x, -1))
    np.testing.assert_array_equal(run_layer(lambda b: b.add_upper_triangular("u", "x", "y", k=1), {"x": x}), np.triu(x, 1))


@pytest.mark.ops("sliceBySize")
def test_slice_by_size(run_layer, rng):
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    y = run_layer(lambda b: b.add_slice_by_size("s", ["x", "begin"], "y", axis=1, size=2), {"x": x, "begin": np.array([3.0])})
    np.testing.assert_array_equal(y, x[:, 3:5])


@pytest.mark.ops("constantPad")
def test_constant_pad_amounts_and_target_sizes(run_layer, rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = run_layer(lambda b: b.add_constant_pad("p", ["x"], "y", value=9.0, pad_amounts=[1, 0, 2, 3]), {"x": x})
    np.testing.assert_array_equal(y, np.pad(x, ((1, 0), (2, 3)), constant_values=9.0))
    y = run_layer(lambda b: b.add_constant_pad("p", ["x"], "y", pad_to_given_output_size_mode=True, pad_amounts=[0, 4, 0, 0]), {"x": x})
    np.testing.assert_array_equal(y, np.pad(x, ((0, 2), (0, 0))))


@pytest.mark.ops("clampedReLU")
def test_clamped_relu(run_layer, rng):
    x = rng.standard_normal(20).astype(np.float32) * 5
    y = run_layer(lambda b: b.add_clamped_relu("c", "x", "y", alpha=0.1, beta=3.0), {"x": x})
    np.testing.assert_allclose(y, np.minimum(np.where(x >= 0, x, 0.1 * x), 3.0), rtol=1e-6)
