"""innerProduct, batchedMatmul, embedding(ND) and dot against numpy."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime import ShapeMismatchError


@pytest.mark.ops("innerProduct")
@pytest.mark.parametrize("shape", [(6,), (2, 6), (2, 3, 6), (2, 6, 1, 1), (2, 3, 3, 2, 1)])
def test_inner_product_reads_the_input_by_rank(run_layer, rng, shape):
    w = rng.standard_normal((4, 6)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    y = run_layer(lambda b: b.add_inner_product("fc", w, bias, 6, 4, True, "x", "y"), {"x": x})
    rank = len(shape)
    if rank <= 3:
        expected = x @ w.T + bias
    elif rank == 4:
        expected = (x.reshape(shape[0], 6) @ w.T + bias).reshape(shape[0], 4, 1, 1)
    else:
        expected = (x.reshape(shape[0] * shape[1], 6) @ w.T + bias).reshape(shape[0], shape[1], 4, 1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.ops("innerProduct")
def test_inner_product_input_channels_must_match(run_layer, rng):
    w = rng.standard_normal((4, 6)).astype(np.float32)
    with pytest.raises(ShapeMismatchError, match=r"innerProduct layer 'fc': input features \(input shape \[2, 5\]\): got 5, expected inputChannels = 6"):
        run_layer(lambda b: b.add_inner_product("fc", w, None, 6, 4, False, "x", "y"), {"x": np.zeros((2, 5))})


@pytest.mark.ops("batchedMatmul")
@pytest.mark.parametrize("shape_a, shape_b, ta, tb", [
    ((2, 3, 4), (2, 4, 5), False, False), ((3, 4), (2, 4, 5), False, False), ((2, 4, 3), (5, 4), True, True),
    ((4,), (4, 2), False, False), ((4,), (4,), False, False), ((3, 4), (4,), False, False),
])
def test_batched_matmul_two_inputs(run_layer, rng, shape_a, shape_b, ta, tb):
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    y = run_layer(lambda bl: bl.add_batched_mat_mul("mm", ["a", "b"], "y", transpose_a=ta, transpose_b=tb), {"a": a, "b": b})
    aa = np.swapaxes(a, -1, -2) if ta else a.reshape(1, -1) if a.ndim == 1 else a
    bb = np.swapaxes(b, -1, -2) if tb else b.reshape(-1, 1) if b.ndim == 1 else b
    np.testing.assert_allclose(y, np.matmul(aa, bb), rtol=1e-5, atol=1e-6)  # rank >= 2, as the proto says


@pytest.mark.ops("batchedMatmul")
def test_batched_matmul_with_weight_matrix(run_layer, rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    y = run_layer(lambda bl: bl.add_batched_mat_mul("mm", ["a"], "y", weight_matrix_rows=4, weight_matrix_columns=5,
                                                    W=w, bias=bias), {"a": a})
    np.testing.assert_allclose(y, a @ w + bias, rtol=1e-5, atol=1e-6)
    with pytest.raises(ShapeMismatchError, match="inner dimensions"):  # a [2, 3, 4] @ b [3, 4]
        run_layer(lambda bl: bl.add_batched_mat_mul("mm", ["a", "b"], "y"), {"a": a, "b": np.zeros((3, 4))})


@pytest.mark.ops("embedding", "embeddingND")
def test_embeddings(run_layer, rng):
    w = rng.standard_normal((3, 10)).astype(np.float32)  # [outputChannels, inputDim]
    bias = rng.standard_normal(3).astype(np.float32)
    idx = np.array([4, 0, 9], dtype=np.float32).reshape(3, 1, 1, 1)
    y = run_layer(lambda b: b.add_embedding("e", w, bias, 10, 3, True, "x", "y"), {"x": idx})
    np.testing.assert_allclose(y, (w[:, [4, 0, 9]].T + bias).reshape(3, 3, 1, 1), rtol=1e-6)
    idx_nd = np.array([[1], [7]], dtype=np.float32)
    y = run_layer(lambda b: b.add_embedding_nd("e", "x", "y", 10, 3, w), {"x": idx_nd})
    np.testing.assert_allclose(y, w[:, [1, 7]].T, rtol=1e-6)


@pytest.mark.ops("dot")
@pytest.mark.parametrize("cosine", [False, True])
def test_dot_product(run_layer, raw_layer, rng, cosine):
    a = rng.standard_normal((2, 5, 1, 1)).astype(np.float32)
    b = rng.standard_normal((2, 5, 1, 1)).astype(np.float32)
    y = run_layer(raw_layer("dot", ("a", "b"), cosineSimilarity=cosine), {"a": a, "b": b})
    if cosine:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(y, (a * b).sum(axis=1, keepdims=True), rtol=1e-5)
