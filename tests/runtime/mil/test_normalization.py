"""batch_norm, instance_norm, layer_norm, l2_norm, local_response_norm against torch oracles."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.testing import mb, run_mil


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(got: np.ndarray, expected: torch.Tensor, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=atol)


@pytest.fixture
def x(rng) -> np.ndarray:
    return (rng.standard_normal((2, 3, 5, 6)) * 3 + 1).astype(np.float32)


@pytest.mark.ops("batch_norm")
def test_batch_norm(x, rng):
    mean, gamma, beta = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2, 3).astype(np.float32)
    full, bare = run_mil(
        lambda x: (mb.batch_norm(x=x, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=1e-3),
                   mb.batch_norm(x=x, mean=mean, variance=var)),
        {"x": x},
    )
    _close(full, F.batch_norm(_t(x), _t(mean), _t(var), _t(gamma), _t(beta), eps=1e-3))
    _close(bare, F.batch_norm(_t(x), _t(mean), _t(var), eps=1e-5))


@pytest.mark.ops("instance_norm")
def test_instance_norm(x, rng):
    gamma, beta = (rng.standard_normal(3).astype(np.float32) for _ in range(2))
    got = run_mil(lambda x: mb.instance_norm(x=x, gamma=gamma, beta=beta, epsilon=1e-4), {"x": x})
    _close(got, F.instance_norm(_t(x), weight=_t(gamma), bias=_t(beta), eps=1e-4))


@pytest.mark.ops("layer_norm")
@pytest.mark.parametrize("axes", [[-1], [2, 3], [1, 2, 3]])
def test_layer_norm(x, axes, rng):
    shape = [x.shape[a] for a in axes]
    gamma, beta = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    got = run_mil(lambda x: mb.layer_norm(x=x, axes=axes, gamma=gamma, beta=beta, epsilon=1e-5), {"x": x})
    _close(got, F.layer_norm(_t(x), shape, _t(gamma), _t(beta), eps=1e-5))


@pytest.mark.ops("l2_norm")
def test_l2_norm_normalises_the_last_three_dims(x):
    got = run_mil(lambda x: mb.l2_norm(x=x, epsilon=1e-6), {"x": x})
    flat = _t(x).reshape(2, -1)
    _close(got, (flat / torch.sqrt((flat**2).sum(1, keepdim=True) + 1e-6)).reshape(x.shape))


@pytest.mark.ops("local_response_norm")
def test_local_response_norm(x):
    got = run_mil(lambda x: mb.local_response_norm(x=x, size=3, alpha=1e-2, beta=0.6, k=2.0), {"x": x})
    _close(got, F.local_response_norm(_t(x), 3, alpha=1e-2, beta=0.6, k=2.0))
