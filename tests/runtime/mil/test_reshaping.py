"""Data movement ops against torch / plain indexing oracles."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.testing import mb, run_mil


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.standard_normal((2, 4, 6, 8)).astype(np.float32)


@pytest.mark.ops("reshape", "transpose", "expand_dims", "squeeze", "flatten2d", "reverse")
def test_reshape_family(x):
    results = run_mil(
        lambda x: (
            mb.reshape(x=x, shape=[4, -1, 8]),
            mb.reshape(x=x, shape=[0, 0, 8, 6]),  # 0 copies x's dim
            mb.transpose(x=x, perm=[0, 2, -1, 1]),
            mb.expand_dims(x=x, axes=[-2]),
            mb.squeeze(x=mb.expand_dims(x=x, axes=[1]), axes=[-4]),
            mb.squeeze(x=mb.reshape(x=x, shape=[2, 1, 4, 6, 8])),
            mb.flatten2d(x=x, axis=2),
            mb.reverse(x=x, axes=[1, -1]),
        ),
        {"x": x},
    )
    t = torch.from_numpy(x)
    expected = [
        t.reshape(4, -1, 8), t.reshape(2, 4, 8, 6), t.permute(0, 2, 3, 1), t.unsqueeze(-2),
        t, t, t.reshape(8, 48), torch.flip(t, [1, 3]),
    ]
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.ops("slice_by_index")
def test_slice_by_index_masks_and_negative_strides(x):
    plain, masked, squeezed = run_mil(
        lambda x: (
            mb.slice_by_index(x=x, begin=[0, 1, -5, 7], end=[2, 4, 6, 0], stride=[1, 2, 2, -3]),
            mb.slice_by_index(x=x, begin=[1, 3, 0, 2], end=[0, 0, 4, 6], begin_mask=[True, True, False, False],
                              end_mask=[True, False, False, True]),
            mb.slice_by_index(x=x, begin=[1, 0, 2, 0], end=[2, 4, 3, 8],
                              squeeze_mask=[True, False, True, False]),
        ),
        {"x": x},
    )
    np.testing.assert_array_equal(plain, x[0:2, 1:4:2, -5:6:2, 7:0:-3])
    np.testing.assert_array_equal(masked, x[:, :0, 0:4, 2:])
    np.testing.assert_array_equal(squeezed, x[1, :, 2, :])


@pytest.mark.ops("slice_by_size")
def test_slice_by_size(x):
    got = run_mil(lambda x: mb.slice_by_size(x=x, begin=[1, 0, -4, 2], size=[1, -1, 3, 5]), {"x": x})
    np.testing.assert_array_equal(got, x[1:2, :, 2:5, 2:7])


@pytest.mark.ops("pixel_shuffle", "pixel_unshuffle")
def test_pixel_shuffle_matches_torch(x):
    shuffled, unshuffled = run_mil(
        lambda x: (mb.pixel_shuffle(x=x, upscale_factor=2), mb.pixel_unshuffle(x=x, downscale_factor=np.uint32(2))),
        {"x": x},
    )
    np.testing.assert_array_equal(shuffled, F.pixel_shuffle(torch.from_numpy(x), 2).numpy())
    np.testing.assert_array_equal(unshuffled, F.pixel_unshuffle(torch.from_numpy(x), 2).numpy())


@pytest.mark.ops("depth_to_space", "space_to_depth")
def test_depth_to_space_uses_tensorflow_dcr_order(x):
    to_space, to_depth = run_mil(
        lambda x: (mb.depth_to_space(x=x, block_size=2), mb.space_to_depth(x=x, block_size=2)), {"x": x}
    )
    n, c, h, w = x.shape
    b = 2
    for i in range(b):
        for j in range(b):
            # DCR: output (h*b + i, w*b + j) of channel k comes from input channel (i*b + j) * C' + k
            np.testing.assert_array_equal(to_space[:, :, i::b, j::b], x[:, (i * b + j) * (c // 4):(i * b + j + 1) * (c // 4)])
            np.testing.assert_array_equal(to_depth[:, (i * b + j) * c:(i * b + j + 1) * c], x[:, :, i::b, j::b])


@pytest.mark.ops("reshape_like")
def test_reshape_like_takes_dims_from_reference_tensors(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    a = np.zeros((6, 5), np.float32)
    b = np.zeros((7, 2, 2), np.float32)
    got = run_mil(
        lambda x, a, b: mb.reshape_like(x=x, ref_tensors=(a, b), begins=(0, 1), ends=(1, 3), end_masks=(False, True)),
        {"x": x, "a": a, "b": b},
    )
    np.testing.assert_array_equal(got, torch.from_numpy(x).reshape(6, 2, 2).numpy())  # a.shape[0:1] + b.shape[1:]


@pytest.mark.ops("space_to_batch", "batch_to_space")
def test_space_to_batch_and_back(rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    to_batch, round_trip = run_mil(
        lambda x: (
            mb.space_to_batch(x=x, block_shape=[2, 3], paddings=[[1, 0], [0, 0]]),
            mb.batch_to_space(x=mb.space_to_batch(x=x, block_shape=[2, 3], paddings=[[1, 0], [0, 0]]),
                              block_shape=[2, 3], crops=[[1, 0], [0, 0]]),
        ),
        {"x": x},
    )
    padded = F.pad(torch.from_numpy(x), (0, 0, 1, 0)).numpy()
    for i in range(2):  # TensorFlow order: block offset (i, j) major, then the original batch
        for j in range(3):
            np.testing.assert_array_equal(to_batch[(i * 3 + j) * 2:(i * 3 + j + 1) * 2], padded[:, :, i::2, j::3])
    np.testing.assert_array_equal(round_trip, x)


@pytest.mark.ops("sliding_windows", "reverse_sequence")
def test_sliding_windows_and_reverse_sequence(rng):
    x = rng.standard_normal((3, 7, 2)).astype(np.float32)
    lengths = np.array([0, 3, 7], np.int32)
    windows, reversed_ = run_mil(
        lambda x, n: (mb.sliding_windows(x=x, axis=1, size=3, stride=2),
                      mb.reverse_sequence(x=x, lengths=n, seq_axis=1, batch_axis=0)),
        {"x": x, "n": lengths},
    )
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(windows, t.unfold(1, 3, 2).permute(0, 1, 3, 2).numpy())
    expected = torch.stack([torch.cat([t[b, :n].flip(0), t[b, n:]]) for b, n in enumerate(lengths)])
    np.testing.assert_array_equal(reversed_, expected.numpy())


@pytest.mark.ops("slice_update")
def test_slice_update(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    update = rng.standard_normal((2, 3)).astype(np.float32)
    got = run_mil(
        lambda x, u: mb.slice_update(x=x, update=u, begin=[1, 0], end=[3, 6], stride=[1, 2]),
        {"x": x, "u": update}, target="iOS18",
    )
    expected = torch.from_numpy(x).clone()
    expected[1:3, 0:6:2] = torch.from_numpy(update)
    np.testing.assert_array_equal(got, expected.numpy())


@pytest.mark.ops("flatten2d")
@pytest.mark.parametrize("axis", [-2, -1, 0, 2])
def test_flatten2d_axes(axis, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    got = run_mil(lambda x: mb.flatten2d(x=x, axis=axis), {"x": x})
    split = axis + 2 if axis < 0 else axis
    np.testing.assert_array_equal(got, x.reshape(int(np.prod(x.shape[:split])), -1))


@pytest.mark.ops("reshape")
def test_reshape_zero_counts_from_the_right_in_ios17():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = run_mil(lambda x: mb.reshape(x=x, shape=[1, 0, -1, 0]), {"x": x}, target="iOS17")
    np.testing.assert_array_equal(got, x.reshape(1, 1, 2, 3))  # coremltools' iOS17 example
