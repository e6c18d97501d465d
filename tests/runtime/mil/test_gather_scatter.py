"""gather / scatter ops against torch indexing oracles."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modelbuild.runtime.mil.testing import mb, run_mil


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.standard_normal((3, 4, 5)).astype(np.float32)


@pytest.mark.ops("gather")
def test_gather_axis_negative_indices_and_batch_dims(x):
    indices = np.array([[0, -1], [2, 1]], np.int32)
    batch_indices = np.array([[1, 0], [3, 3], [2, 0]], np.int32)
    plain, batched = run_mil(
        lambda x, i, j: (mb.gather(x=x, indices=i, axis=1), mb.gather(x=x, indices=j, axis=1, batch_dims=1)),
        {"x": x, "i": indices, "j": batch_indices},
    )
    t = _t(x)
    np.testing.assert_array_equal(plain, t[:, _t(indices % 4).long()].numpy())
    expected = torch.stack([t[b, _t(batch_indices[b]).long()] for b in range(3)])
    np.testing.assert_array_equal(batched, expected.numpy())


@pytest.mark.ops("gather_along_axis", "gather_nd")
def test_gather_along_axis_and_nd(x, rng):
    along = rng.integers(0, 5, (3, 4, 2)).astype(np.int32)
    nd = np.array([[0, 1], [2, 3], [1, 0]], np.int32)
    got_along, got_nd = run_mil(
        lambda x, a, n: (mb.gather_along_axis(x=x, indices=a, axis=-1), mb.gather_nd(x=x, indices=n)),
        {"x": x, "a": along, "n": nd},
    )
    np.testing.assert_array_equal(got_along, torch.gather(_t(x), -1, _t(along).long()).numpy())
    np.testing.assert_array_equal(got_nd, _t(x)[_t(nd[:, 0]).long(), _t(nd[:, 1]).long()].numpy())


@pytest.mark.ops("scatter")
@pytest.mark.parametrize("mode", ["update", "add", "mul", "max"])
def test_scatter_modes(x, rng, mode):
    indices = np.array([3, 0, 3], np.int32)  # a repeated index accumulates
    updates = rng.standard_normal((3, 3, 5)).astype(np.float32)
    if mode == "update":
        indices = np.array([3, 0, 1], np.int32)
    got = run_mil(lambda x, u: mb.scatter(data=x, indices=indices, updates=u, axis=1, mode=mode),
                  {"x": x, "u": updates})
    index = _t(indices).long().reshape(1, 3, 1).expand(3, 3, 5)
    reduce = {"update": None, "add": "sum", "mul": "prod", "max": "amax"}[mode]
    if reduce is None:
        expected = _t(x).scatter(1, index, _t(updates))
    else:
        expected = _t(x).scatter_reduce(1, index, _t(updates), reduce=reduce)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6)


@pytest.mark.ops("scatter_along_axis", "scatter_nd")
def test_scatter_along_axis_and_nd(x, rng):
    along = np.stack([rng.permutation(5)[:2] for _ in range(12)]).reshape(3, 4, 2).astype(np.int32)
    along_updates = rng.standard_normal((3, 4, 2)).astype(np.float32)
    nd = np.array([[0, 1], [2, 3], [0, 1]], np.int32)
    nd_updates = rng.standard_normal((3, 5)).astype(np.float32)
    got_along, got_nd = run_mil(
        lambda x, u, v: (
            mb.scatter_along_axis(data=x, indices=along, updates=u, axis=2, mode="update"),
            mb.scatter_nd(data=x, indices=nd, updates=v, mode="add"),
        ),
        {"x": x, "u": along_updates, "v": nd_updates},
    )
    np.testing.assert_array_equal(got_along, _t(x).scatter(2, _t(along).long(), _t(along_updates)).numpy())
    expected = _t(x).clone()
    expected.index_put_((_t(nd[:, 0]).long(), _t(nd[:, 1]).long()), _t(nd_updates), accumulate=True)
    np.testing.assert_allclose(got_nd, expected.numpy(), rtol=1e-6)


@pytest.mark.ops("scatter", "scatter_nd", "gather")
def test_ios17_indices_must_be_non_negative(rng):
    from modelbuild.runtime.mil.ops.gather_scatter import InvalidIndicesError

    data = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    updates = np.array([[5, 6, 7], [8, 9, 10]], np.float32)
    indices = np.array([-1, 0], np.int32)  # iOS17: -1 is out of bounds, not "the last row"
    feeds = {"d": data, "u": updates, "i": indices}
    with pytest.raises(InvalidIndicesError, match=r"Unable to compute the prediction using ML Program: scatter op .* index -1 outside \[0, 2\)"):
        run_mil(lambda d, u, i: mb.scatter(data=d, indices=i, updates=u, validate_indices=True), feeds, target="iOS17")
    unchecked = run_mil(lambda d, u, i: mb.scatter(data=d, indices=i, updates=u, mode="add", validate_indices=False),
                        feeds, target="iOS17")
    np.testing.assert_array_equal(unchecked, [[9, 11, 13], [4, 5, 6]])  # the invalid update is dropped
    nd = np.array([[1, 0], [0, 3]], np.int32)
    with pytest.raises(InvalidIndicesError, match="index 3 outside"):
        run_mil(lambda d, i: mb.scatter_nd(data=d, indices=i, updates=np.ones(2, np.float32), validate_indices=True),
                {"d": data, "i": nd}, target="iOS17")
    with pytest.raises(InvalidIndicesError):
        run_mil(lambda d, i: mb.gather(x=d, indices=i, validate_indices=True), {"d": data, "i": indices}, target="iOS17")
    legacy = run_mil(lambda d, i: mb.scatter(data=d, indices=i, updates=updates, mode="update"),
                     {"d": data, "i": indices}, target="iOS16")
    np.testing.assert_array_equal(legacy, [[8, 9, 10], [5, 6, 7]])  # iOS16: -1 is the last row
