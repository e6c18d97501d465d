"""Tensor construction and combination ops against torch / numpy oracles."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.testing import mb, run_mil


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.ops("concat", "split", "stack", "tile")
def test_concat_split_stack_tile(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 5, 4)).astype(np.float32)
    joined, interleaved, first, second, third, s0, s1, stacked, tiled = run_mil(
        lambda a, b: (
            mb.concat(values=[a, b], axis=-2),
            mb.concat(values=[a, mb.mul(x=a, y=2.0)], axis=1, interleave=True),
            *mb.split(x=b, split_sizes=[1, 3, 1], axis=1),
            *mb.split(x=a, num_splits=2, axis=0),
            mb.stack(values=[a, a], axis=-1),
            mb.tile(x=a, reps=[1, 2, 3]),
        ),
        {"a": a, "b": b},
    )
    ta, tb = _t(a), _t(b)
    np.testing.assert_array_equal(joined, torch.cat([ta, tb], -2).numpy())
    np.testing.assert_array_equal(interleaved, torch.stack([ta, ta * 2], 2).reshape(2, 6, 4).numpy())
    for got, want in zip((first, second, third), torch.split(tb, [1, 3, 1], 1)):
        np.testing.assert_array_equal(got, want.numpy())
    for got, want in zip((s0, s1), torch.chunk(ta, 2, 0)):
        np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(stacked, torch.stack([ta, ta], -1).numpy())
    np.testing.assert_array_equal(tiled, ta.repeat(1, 2, 3).numpy())


@pytest.mark.ops("pad")
def test_pad_modes(rng):
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    constant, reflect, replicate, last_dim = run_mil(
        lambda x: (
            mb.pad(x=x, pad=[1, 2, 0, 3], mode="constant", constant_val=7.0),
            mb.pad(x=x, pad=[2, 1, 3, 0], mode="reflect"),
            mb.pad(x=x, pad=[0, 4, 2, 2], mode="replicate"),
            mb.pad(x=x, pad=[3, 1], mode="constant"),
        ),
        {"x": x},
    )
    t = _t(x)
    np.testing.assert_array_equal(constant, F.pad(t, (0, 3, 1, 2), value=7.0).numpy())
    np.testing.assert_array_equal(reflect, F.pad(t, (3, 0, 2, 1), mode="reflect").numpy())
    np.testing.assert_array_equal(replicate, F.pad(t, (2, 2, 0, 4), mode="replicate").numpy())
    np.testing.assert_array_equal(last_dim, F.pad(t, (3, 1)).numpy())


@pytest.mark.ops("fill", "fill_like", "shape", "range_1d")
def test_fill_shape_range(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    filled, filled_like, shape, arange = run_mil(
        lambda x: (
            mb.fill(shape=mb.shape(x=x), value=2.5),
            mb.fill_like(ref_tensor=x, value=np.int32(4)),
            mb.shape(x=x),
            mb.range_1d(start=np.float32(1.0), end=np.float32(3.0), step=np.float32(0.5)),
        ),
        {"x": x},
        target="iOS16",
    )
    np.testing.assert_array_equal(filled, torch.full((2, 3), 2.5).numpy())
    np.testing.assert_array_equal(filled_like, torch.full((2, 3), 4).numpy())
    np.testing.assert_array_equal(shape, [2, 3])
    np.testing.assert_allclose(arange, torch.arange(1.0, 3.0, 0.5).numpy())


@pytest.mark.ops("topk", "argsort")
def test_topk_and_argsort(rng):
    x = rng.permutation(24).reshape(2, 3, 4).astype(np.float32)
    largest, largest_idx, smallest, smallest_idx, unsorted, order = run_mil(
        lambda x: (
            *mb.topk(x=x, k=2, axis=1),
            *mb.topk(x=x, k=3, axis=-1, ascending=True),
            mb.topk(x=x, k=2, axis=1, sort=False, return_indices=False),
            mb.argsort(x=x, axis=2),
        ),
        {"x": x},
    )
    values, indices = torch.topk(_t(x), 2, dim=1)
    np.testing.assert_array_equal(largest, values.numpy())
    np.testing.assert_array_equal(largest_idx, indices.numpy())
    values, indices = torch.topk(_t(x), 3, dim=-1, largest=False)
    np.testing.assert_array_equal(smallest, values.numpy())
    np.testing.assert_array_equal(smallest_idx, indices.numpy())
    np.testing.assert_array_equal(unsorted, largest)  # sort=False: sorted all the same, as coremltools' test
    np.testing.assert_array_equal(order, torch.argsort(_t(x), dim=2, descending=True).numpy())


@pytest.mark.ops("cumsum")
@pytest.mark.parametrize("exclusive, reverse", [(False, False), (True, False), (False, True), (True, True)])
def test_cumsum(exclusive, reverse, rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    got = run_mil(lambda x: mb.cumsum(x=x, axis=1, exclusive=exclusive, reverse=reverse), {"x": x})
    t = torch.flip(_t(x), [1]) if reverse else _t(x)
    total = torch.cumsum(t, 1) - (t if exclusive else 0)
    np.testing.assert_allclose(got, (torch.flip(total, [1]) if reverse else total).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.ops("band_part")
def test_band_part(rng):
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    band, lower_triangle = run_mil(
        lambda x: (mb.band_part(x=x, lower=1, upper=2), mb.band_part(x=x, lower=-1, upper=0)), {"x": x}
    )
    t = _t(x)
    np.testing.assert_array_equal(band, (torch.triu(t, -1) * torch.tril(torch.ones(5, 6), 2)).numpy())
    np.testing.assert_array_equal(lower_triangle, torch.tril(t).numpy())


@pytest.mark.ops("non_zero", "one_hot")
def test_non_zero_and_one_hot(rng):
    x = (rng.random((3, 4)) > 0.5).astype(np.float32)
    idx = np.array([[0, 2], [3, 1]], np.int32)
    coordinates, hot = run_mil(
        lambda x, i: (mb.non_zero(x=x), mb.one_hot(indices=i, one_hot_vector_size=4, axis=1, on_value=5.0,
                                                   off_value=-1.0)),
        {"x": x, "i": idx},
    )
    np.testing.assert_array_equal(coordinates, torch.nonzero(_t(x)).numpy())
    expected = F.one_hot(_t(idx).long(), 4).permute(0, 2, 1).float() * 6 - 1
    np.testing.assert_array_equal(hot, expected.numpy())


@pytest.mark.ops("fill")
def test_fill_from_a_dynamic_shape_with_a_loose_declared_type():
    """coremltools' iOS14 TestFill (symbolic): fill is declared tensor<fp32, [?]> (rank 1) but makes rank 3."""
    from coremltools.converters.mil.mil import get_new_symbol

    from modelbuild.runtime.mil.testing import to_program

    @mb.program(input_specs=[mb.TensorSpec(shape=(get_new_symbol(),))])
    def program(shape):
        return mb.fill(shape=mb.cast(x=shape, dtype="int32"), value=2.5)

    with pytest.warns(UserWarning, match="flexible"):
        runtime = to_program(program)
    (got,) = runtime.run({"shape": np.array([2, 3, 4], np.float32)}).values()
    np.testing.assert_array_equal(got, torch.full((2, 3, 4), 2.5).numpy())
