"""Cutting, joining, picking and repeating layers against numpy."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime import ShapeMismatchError


@pytest.mark.ops("concat")
def test_concat_along_channels_and_sequence(run_layer, rng):
    a, b = rng.standard_normal((1, 2, 3, 4)).astype(np.float32), rng.standard_normal((1, 5, 3, 4)).astype(np.float32)
    y = run_layer(lambda bl: bl.add_elementwise("c", ["a", "b"], "y", "CONCAT"), {"a": a, "b": b})
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=1))
    a5, b5 = rng.standard_normal((2, 1, 3, 1, 1)).astype(np.float32), rng.standard_normal((1, 1, 3, 1, 1)).astype(np.float32)
    y = run_layer(lambda bl: bl.add_elementwise("c", ["a", "b"], "y", "SEQUENCE_CONCAT"), {"a": a5, "b": b5})
    np.testing.assert_array_equal(y, np.concatenate([a5, b5], axis=0))


@pytest.mark.ops("concat")
def test_concat_mismatch_names_the_layer(run_layer):
    with pytest.raises(ShapeMismatchError, match=r"concat layer 'c': shapes outside the concatenation axis 1: got \[1, 2, 3, 4\] and \[1, 2, 3, 5\]"):
        run_layer(lambda bl: bl.add_elementwise("c", ["a", "b"], "y", "CONCAT"),
                  {"a": np.zeros((1, 2, 3, 4)), "b": np.zeros((1, 2, 3, 5))})


@pytest.mark.ops("concatND", "stack")
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_nd_and_stack(run_layer, rng, axis):
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(run_layer(lambda bl: bl.add_concat_nd("c", ["a", "b"], "y", axis), {"a": a, "b": b}),
                                  np.concatenate([a, b], axis=axis))
    np.testing.assert_array_equal(run_layer(lambda bl: bl.add_stack("s", ["a", "b"], "y", axis), {"a": a, "b": b}),
                                  np.stack([a, b], axis=axis))


@pytest.mark.ops("concatND")
@pytest.mark.parametrize("axis", [1, -1])
def test_concat_nd_interleave(run_layer, rng, axis):
    a, b, c = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3))
    got = run_layer(lambda bl: bl.add_concat_nd("c", ["a", "b", "c"], "y", axis, interleave=True),
                    {"a": a, "b": b, "c": c})
    expected = np.zeros_like(np.concatenate([a, b, c], axis=axis))
    for j, part in enumerate((a, b, c)):  # out[..., j::3, ...] = inputs[j]
        index = [slice(None)] * 3
        index[axis] = slice(j, None, 3)
        expected[tuple(index)] = part
    np.testing.assert_array_equal(got, expected)


@pytest.mark.ops("split", "splitND")
def test_split_and_split_nd(run_layer, rng):
    x = rng.standard_normal((1, 6, 2, 2)).astype(np.float32)
    parts = run_layer(lambda b: b.add_split("s", "x", ["p", "q", "r"]), {"x": x}, outputs=("p", "q", "r"))
    for got, want in zip(parts, np.split(x, 3, axis=1)):
        np.testing.assert_array_equal(got, want)
    parts = run_layer(lambda b: b.add_split_nd("s", "x", ["p", "q"], axis=-1, split_sizes=[1, 1]), {"x": x}, outputs=("p", "q"))
    np.testing.assert_array_equal(parts[1], x[..., 1:])
    parts = run_layer(lambda b: b.add_split_nd("s", "x", ["p", "q"], axis=1, num_splits=2), {"x": x}, outputs=("p", "q"))
    np.testing.assert_array_equal(parts[0], x[:, :3])
    x7 = rng.standard_normal((7, 2)).astype(np.float32)  # uneven: the first parts are one larger
    parts = run_layer(lambda b: b.add_split_nd("s", "x", ["p", "q", "r"], axis=0, num_splits=3), {"x": x7}, outputs=("p", "q", "r"))
    assert [part.shape[0] for part in parts] == [3, 2, 2]
    np.testing.assert_array_equal(np.concatenate(parts), x7)


@pytest.mark.ops("slice")
@pytest.mark.parametrize("axis, index", [("channel", 1), ("height", 2), ("width", 3)])
def test_old_slice(run_layer, rng, axis, index):
    x = rng.standard_normal((1, 6, 7, 8)).astype(np.float32)
    y = run_layer(lambda b: b.add_slice("s", "x", "y", axis, start_index=1, end_index=-1, stride=2), {"x": x})
    selector = [slice(None)] * 4
    selector[index] = slice(1, -1, 2)
    np.testing.assert_array_equal(y, x[tuple(selector)])


@pytest.mark.ops("sliceStatic")
def test_slice_static_masks_negative_strides_and_squeeze(run_layer, rng):
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    y = run_layer(lambda b: b.add_slice_static("s", "x", "y", [1, 0, -1], [3, 4, 0], [1, 2, -2],
                                                [False, True, False], [False, False, True]), {"x": x})
    np.testing.assert_array_equal(y, x[1:3, :4:2, -1::-2])
    y = run_layer(lambda b: b.add_slice_static("s", "x", "y", [2, 0, 0], [3, 5, 6], [1, 1, 1], [False] * 3, [False] * 3,
                                                squeeze_masks=[True, False, False]), {"x": x})
    np.testing.assert_array_equal(y, x[2])
    # a squeezed axis takes its begin index whatever the end says (TensorFlow's shrink_axis_mask)
    y = run_layer(lambda b: b.add_slice_static("s", "x", "y", [0, -1, 0], [4, 0, 6], [1, 1, 1], [False] * 3, [False] * 3,
                                                squeeze_masks=[False, True, False]), {"x": x})
    np.testing.assert_array_equal(y, x[:, -1, :])


@pytest.mark.ops("sliceDynamic")
def test_slice_dynamic(run_layer, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_slice_dynamic("s", ["x", "begin", "end"], "y", strides=[1, 2],
                                                 begin_masks=[False, False], end_masks=[False, False]),
                  {"x": x, "begin": np.array([1, 0]), "end": np.array([3, 5])})
    np.testing.assert_array_equal(y, x[1:3, 0:5:2])


@pytest.mark.ops("sliceDynamic")
def test_slice_dynamic_with_the_builders_five_long_defaults(run_layer, rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    # no strides or masks given: coremltools writes [1] * 5 and [False] * 5 for this rank-3 input
    y = run_layer(lambda b: b.add_slice_dynamic("s", ["x", "begin", "end"], "y"),
                  {"x": x, "begin": np.array([0, 1, 2]), "end": np.array([2, 4, 5])})
    np.testing.assert_array_equal(y, x[0:2, 1:4, 2:5])


@pytest.mark.ops("sliceDynamic")
def test_slice_dynamic_strides_of_mixed_values_must_have_the_rank(run_layer, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    with pytest.raises(ShapeMismatchError, match=r"length of strides: got 3, expected the input rank 2"):
        run_layer(lambda b: b.add_slice_dynamic("s", ["x", "begin", "end"], "y", strides=[1, 2, 1]),
                  {"x": x, "begin": np.array([1, 0]), "end": np.array([3, 5])})


@pytest.mark.ops("gather", "gatherAlongAxis")
def test_gather_with_negative_indices_and_axis(run_layer, rng):
    data = rng.standard_normal((3, 4, 5)).astype(np.float32)
    idx = np.array([[0, -1], [2, 1]], dtype=np.float32)
    y = run_layer(lambda b: b.add_gather("g", ["d", "i"], "y", axis=-2), {"d": data, "i": idx})
    np.testing.assert_array_equal(y, np.take(data, idx.astype(int) % 4, axis=1))
    idx2 = rng.integers(0, 4, (3, 2, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_gather_along_axis("g", ["d", "i"], "y", axis=1), {"d": data, "i": idx2})
    np.testing.assert_array_equal(y, np.take_along_axis(data, idx2.astype(int), axis=1))
    with pytest.raises(ShapeMismatchError, match=r"indices: got values in \[0, 7\], expected \[-4, 3\]"):
        run_layer(lambda b: b.add_gather("g", ["d", "i"], "y", axis=1), {"d": data, "i": np.array([0.0, 7.0])})


@pytest.mark.ops("tile")
@pytest.mark.parametrize("reps", [[2, 3, 1], [3], [2, 2]])
def test_tile(run_layer, rng, reps):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(run_layer(lambda b: b.add_tile("t", "x", "y", reps=reps), {"x": x}), np.tile(x, reps))
    y = run_layer(lambda b: b.add_tile("t", ["x", "r"], "y"), {"x": x, "r": np.array(reps, dtype=np.float32)})
    np.testing.assert_array_equal(y, np.tile(x, reps))


@pytest.mark.ops("crop")
def test_crop_by_amounts_and_by_reference(run_layer, rng):
    x = rng.standard_normal((1, 2, 6, 7)).astype(np.float32)
    y = run_layer(lambda b: b.add_crop("c", 1, 2, 0, 3, [], ["x"], "y"), {"x": x})
    np.testing.assert_array_equal(y, x[..., 0:3, 1:5])
    ref = np.zeros((1, 2, 3, 4), dtype=np.float32)
    y = run_layer(lambda b: b.add_crop("c", 0, 0, 0, 0, [2, 1], ["x", "r"], "y"), {"x": x, "r": ref})
    np.testing.assert_array_equal(y, x[..., 2:5, 1:5])


@pytest.mark.ops("padding")
@pytest.mark.parametrize("kind, numpy_mode", [("constant", "constant"), ("reflection", "reflect"), ("replication", "edge")])
def test_padding_modes(run_layer, kind, numpy_mode):
    x = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4)  # the proto's example
    y = run_layer(lambda b: b.add_padding("p", left=2, top=2, input_name="x", output_name="y", padding_type=kind), {"x": x})
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (2, 0), (2, 0)), mode=numpy_mode))
    if kind == "reflection":
        np.testing.assert_array_equal(y[0, 0], [11, 10, 9, 10, 11, 12])


@pytest.mark.ops("padding")
def test_constant_padding_value(run_layer):
    x = np.ones((1, 2, 2), dtype=np.float32)
    y = run_layer(lambda b: b.add_padding("p", right=1, bottom=1, value=-3.0, input_name="x", output_name="y"), {"x": x})
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (0, 1), (0, 1)), constant_values=-3.0))


@pytest.mark.ops("reverse", "copy")
def test_reverse_and_copy(run_layer, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_reverse("r", "x", "y", reverse_dim=[True, False, True]), {"x": x})
    np.testing.assert_array_equal(y, x[::-1, :, ::-1])
    np.testing.assert_array_equal(run_layer(lambda b: b.add_copy("c", "x", "y"), {"x": x}), x)


@pytest.mark.ops("reverseSeq")
def test_reverse_seq(run_layer, raw_layer, rng):
    x = rng.standard_normal((5, 3, 2)).astype(np.float32)  # [seq, batch, features]
    lengths = np.array([5, 2, 0], dtype=np.float32)
    y = run_layer(raw_layer("reverseSeq", ("x", "n"), batchAxis=1, sequenceAxis=0), {"x": x, "n": lengths})
    expected = x.copy()
    for b, count in enumerate([5, 2, 0]):
        expected[:count, b] = x[:count, b][::-1]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.ops("sequenceRepeat")
def test_sequence_repeat(run_layer, rng):
    x = rng.standard_normal((2, 1, 3, 1, 1)).astype(np.float32)
    y = run_layer(lambda b: b.add_sequence_repeat("r", 3, "x", "y"), {"x": x})
    np.testing.assert_array_equal(y, np.concatenate([x, x, x], axis=0))
