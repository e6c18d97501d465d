"""reduce_* ops against torch oracles: axes, negative axes, keep_dims, all axes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modelbuild.runtime.mil.testing import mb, run_mil

REDUCTIONS = {
    "reduce_sum": lambda t, d, k: torch.sum(t, d, keepdim=k),
    "reduce_mean": lambda t, d, k: torch.mean(t, d, keepdim=k),
    "reduce_max": lambda t, d, k: torch.amax(t, d, keepdim=k),
    "reduce_min": lambda t, d, k: torch.amin(t, d, keepdim=k),
    "reduce_prod": lambda t, d, k: torch.prod(t, d[0], keepdim=k) if len(d) == 1 else torch.prod(t.flatten()),
    "reduce_l1_norm": lambda t, d, k: torch.linalg.vector_norm(t, 1, d, keepdim=k),
    "reduce_l2_norm": lambda t, d, k: torch.linalg.vector_norm(t, 2, d, keepdim=k),
    "reduce_sum_square": lambda t, d, k: torch.sum(t * t, d, keepdim=k),
    "reduce_log_sum": lambda t, d, k: torch.log(torch.sum(t, d, keepdim=k)),
    "reduce_log_sum_exp": lambda t, d, k: torch.logsumexp(t, d, keepdim=k),
}


@pytest.mark.ops(*REDUCTIONS)
@pytest.mark.parametrize("axes, keep_dims", [([1], False), ([-1, 0], True), ([0, 1, 2], False)])
def test_reductions(axes, keep_dims, rng):
    x = rng.uniform(0.5, 1.5, (3, 4, 5)).astype(np.float32)
    names = list(REDUCTIONS)
    if len(axes) == 2:
        names.remove("reduce_prod")  # torch.prod reduces one dim at a time; covered by the other cases
    results = run_mil(
        lambda x: tuple(getattr(mb, n)(x=x, axes=axes, keep_dims=keep_dims) for n in names), {"x": x}
    )
    dims = tuple(a % 3 for a in axes)
    for name, got in zip(names, results):
        expected = REDUCTIONS[name](torch.from_numpy(x), dims, keep_dims)
        np.testing.assert_allclose(got, expected.numpy().reshape(got.shape), rtol=1e-5, err_msg=name)
        assert got.ndim == (3 if keep_dims else 3 - len(axes)), name


@pytest.mark.ops("reduce_argmax", "reduce_argmin")
def test_argmax_argmin(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    amax, amin = run_mil(
        lambda x: (mb.reduce_argmax(x=x, axis=-2, keep_dims=True), mb.reduce_argmin(x=x, axis=0)), {"x": x}
    )
    np.testing.assert_array_equal(amax, torch.argmax(torch.from_numpy(x), -2, keepdim=True).numpy())
    np.testing.assert_array_equal(amin, torch.argmin(torch.from_numpy(x), 0).numpy())
