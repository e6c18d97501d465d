"""Shape-changing layers against numpy reshape/transpose."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime import ShapeMismatchError


@pytest.mark.ops("reshapeStatic")
def test_reshape_static_with_inferred_dimension(run_layer, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(run_layer(lambda b: b.add_reshape_static("r", "x", "y", [4, -1]), {"x": x}), x.reshape(4, 6))
    with pytest.raises(ShapeMismatchError, match=r"reshapeStatic layer 'r': element count of the target shape \[5, 5\]: got 25 elements, expected 24"):
        run_layer(lambda b: b.add_reshape_static("r", "x", "y", [5, 5]), {"x": x})


@pytest.mark.ops("reshapeDynamic", "getShape", "reshapeLike")
def test_reshape_dynamic_and_like(run_layer, rng):
    x = rng.standard_normal((2, 6)).astype(np.float32)
    ref = np.zeros((3, 4), dtype=np.float32)

    def add(b):
        b.add_get_shape("shape", "ref", "ref_shape")
        b.add_reshape_dynamic("r", ["x", "ref_shape"], "y")
        b.add_reshape_like("rl", ["x", "ref"], "z")

    y, z = run_layer(add, {"x": x, "ref": ref}, outputs=("y", "z"))
    np.testing.assert_array_equal(y, x.reshape(3, 4))
    np.testing.assert_array_equal(z, x.reshape(3, 4))


@pytest.mark.ops("getShape")
def test_get_shape(run_layer):
    y = run_layer(lambda b: b.add_get_shape("s", "x", "y"), {"x": np.zeros((2, 5, 1))})
    np.testing.assert_array_equal(y, [2, 5, 1])


@pytest.mark.ops("rankPreservingReshape")
def test_rank_preserving_reshape_keeps_zero_dimensions(run_layer, rng):
    x = rng.standard_normal((10, 3, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_rank_preserving_reshape("r", "x", "y", [25, 0, -1]), {"x": x})
    np.testing.assert_array_equal(y, x.reshape(25, 3, 2))


@pytest.mark.ops("reshape")
@pytest.mark.parametrize("mode", [0, 1])
def test_old_rank5_reshape_channel_first_and_last(run_layer, rng, mode):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)  # legacy mapping -> [1, 1, 2, 3, 4]
    y = run_layer(lambda b: b.add_reshape("r", "x", "y", (4, 3, 2), mode), {"x": x}, rank5=True)
    if mode == 0:
        expected = x.reshape(4, 3, 2)
    else:  # flatten H, W, C; refill as H', W', C'; back to C', H', W'
        expected = x.transpose(1, 2, 0).reshape(3, 2, 4).transpose(2, 0, 1)
    np.testing.assert_array_equal(y.reshape(4, 3, 2), expected)


@pytest.mark.ops("flatten")
@pytest.mark.parametrize("mode", [0, 1])
def test_flatten_channel_first_and_last(run_layer, rng, mode):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_flatten("f", mode, "x", "y"), {"x": x})
    source = x if mode == 0 else x.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(y, source.reshape(2, 60, 1, 1))


@pytest.mark.ops("flattenTo2D")
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_flatten_to_2d(run_layer, rng, axis):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_flatten_to_2d("f", "x", "y", axis=axis), {"x": x})
    split = axis % 3 if axis < 0 else axis
    np.testing.assert_array_equal(y, x.reshape(int(np.prod(x.shape[:split])), -1))


@pytest.mark.ops("squeeze")
def test_squeeze_axes_all_and_errors(run_layer):
    x = np.zeros((1, 3, 1, 2), dtype=np.float32)
    assert run_layer(lambda b: b.add_squeeze("s", "x", "y", axes=[0, -2]), {"x": x}).shape == (3, 2)
    assert run_layer(lambda b: b.add_squeeze("s", "x", "y", squeeze_all=True), {"x": x}).shape == (3, 2)
    assert run_layer(lambda b: b.add_squeeze("s", "x", "y", squeeze_all=True), {"x": np.zeros((1,))}).shape == (1,)
    with pytest.raises(ShapeMismatchError, match="size of squeezed axes"):
        run_layer(lambda b: b.add_squeeze("s", "x", "y", axes=[1]), {"x": x})


@pytest.mark.ops("expandDims")
@pytest.mark.parametrize("axes, shape", [([0, 1], (1, 1, 10, 5)), ([0, 2], (1, 10, 1, 5)), ([-2, -1], (10, 5, 1, 1))])
def test_expand_dims_like_the_proto_examples(run_layer, axes, shape):
    assert run_layer(lambda b: b.add_expand_dims("e", "x", "y", axes=axes), {"x": np.zeros((10, 5))}).shape == shape


@pytest.mark.ops("transpose")
def test_transpose(run_layer, rng):
    x = rng.standard_normal((6, 7, 8, 9)).astype(np.float32)
    y = run_layer(lambda b: b.add_transpose("t", [3, 1, 2, 0], "x", "y"), {"x": x})
    np.testing.assert_array_equal(y, x.transpose(3, 1, 2, 0))
    with pytest.raises(ShapeMismatchError, match="a permutation of 0..3"):
        run_layer(lambda b: b.add_transpose("t", [0, 1, 2], "x", "y"), {"x": x})


@pytest.mark.ops("permute")
@pytest.mark.parametrize("axis, order", [((0, 3, 1, 2), (0, 1, 4, 2, 3)), ((3, 1, 2, 0), (4, 1, 2, 3, 0)), ((0, 3, 2, 1), (0, 1, 4, 3, 2))])
def test_old_permute_keeps_batch_in_place(run_layer, rng, axis, order):
    x = rng.standard_normal((2, 1, 3, 4, 5)).astype(np.float32)  # [Seq, B, C, H, W]
    y = run_layer(lambda b: b.add_permute("p", axis, "x", "y"), {"x": x})
    np.testing.assert_array_equal(y, x.transpose(order))


@pytest.mark.ops("reorganizeData")
def test_space_to_depth_and_back(run_layer, rng):
    x = rng.standard_normal((1, 2, 4, 6)).astype(np.float32)
    y = run_layer(lambda b: b.add_reorganize_data("s2d", "x", "y", "SPACE_TO_DEPTH", 2), {"x": x})
    # TensorFlow's space_to_depth in NCHW: channel (i * 2 + j) * C + c holds x[c, 2h + i, 2w + j]
    expected = x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 3, 5, 1, 2, 4).reshape(1, 8, 2, 3)
    np.testing.assert_array_equal(y, expected)
    back = run_layer(lambda b: b.add_reorganize_data("d2s", "x", "y", "DEPTH_TO_SPACE", 2), {"x": y})
    np.testing.assert_array_equal(back, x)


@pytest.mark.ops("reorganizeData")
def test_pixel_shuffle_matches_torch(run_layer, rng):
    import torch

    x = rng.standard_normal((1, 8, 3, 2)).astype(np.float32)
    y = run_layer(lambda b: b.add_reorganize_data("ps", "x", "y", "PIXEL_SHUFFLE", 2), {"x": x})
    np.testing.assert_array_equal(y, torch.nn.functional.pixel_shuffle(torch.from_numpy(x), 2).numpy())
