"""The `activation` layer against numpy/torch formulas, one test per nonlinearity."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.ops("activation")


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float64))


CASES = [
    ("LINEAR", [2.0, -0.5], lambda x: 2.0 * x - 0.5),
    ("RELU", None, lambda x: np.maximum(x, 0)),
    ("LEAKYRELU", [0.1], lambda x: F.leaky_relu(_t(x), 0.1).numpy()),
    ("THRESHOLDEDRELU", 0.3, lambda x: np.where(x >= 0.3, x, 0)),
    ("TANH", None, lambda x: torch.tanh(_t(x)).numpy()),
    ("SCALED_TANH", [1.7, 0.66], lambda x: 1.7 * np.tanh(0.66 * x)),
    ("SIGMOID", None, lambda x: torch.sigmoid(_t(x)).numpy()),
    ("SIGMOID_HARD", [0.2, 0.5], lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    ("ELU", 0.7, lambda x: F.elu(_t(x), 0.7).numpy()),
    ("SOFTSIGN", None, lambda x: F.softsign(_t(x)).numpy()),
    ("SOFTPLUS", None, lambda x: F.softplus(_t(x)).numpy()),
]


@pytest.mark.parametrize("name, params, oracle", CASES, ids=[c[0] for c in CASES])
def test_scalar_nonlinearities(run_layer, rng, name, params, oracle):
    x = (rng.standard_normal((2, 3, 4, 5)) * 3).astype(np.float32)
    y = run_layer(lambda b: b.add_activation("act", name, "x", "y", params=params), {"x": x})
    np.testing.assert_allclose(y, oracle(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_softplus_does_not_overflow(run_layer):
    x = np.array([[[-100.0, 0.0, 100.0]]], dtype=np.float32)
    y = run_layer(lambda b: b.add_activation("act", "SOFTPLUS", "x", "y"), {"x": x})
    np.testing.assert_allclose(y, [[[0.0, np.log(2.0), 100.0]]], rtol=1e-6, atol=1e-30)


def test_prelu_per_channel_alpha(run_layer, rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    alpha = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    y = run_layer(lambda b: b.add_activation("act", "PRELU", "x", "y", params=alpha), {"x": x})
    np.testing.assert_allclose(y, F.prelu(torch.from_numpy(x), torch.from_numpy(alpha)).numpy(), rtol=1e-6)


def test_prelu_single_alpha_broadcasts(run_layer, rng):
    x = rng.standard_normal((3, 4, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_activation("act", "PRELU", "x", "y", params=np.array([0.25])), {"x": x})
    np.testing.assert_allclose(y, np.where(x >= 0, x, 0.25 * x), rtol=1e-6)


def test_parametric_softplus_per_channel(run_layer, rng):
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    alpha, beta = np.array([0.5, 2.0]), np.array([1.5, 0.5])
    y = run_layer(lambda b: b.add_activation("act", "PARAMETRICSOFTPLUS", "x", "y", params=[alpha, beta]), {"x": x})
    a, bt = alpha.reshape(-1, 1, 1), beta.reshape(-1, 1, 1)
    np.testing.assert_allclose(y, a * np.log1p(np.exp(bt * x)), rtol=1e-5)


def test_prelu_alpha_length_must_match_channels(run_layer, rng):
    from modelbuild.runtime import ShapeMismatchError

    x = rng.standard_normal((1, 4, 2, 2)).astype(np.float32)
    with pytest.raises(ShapeMismatchError, match="act.*alpha length vs channels.*got 3, expected 4"):
        run_layer(lambda b: b.add_activation("act", "PRELU", "x", "y", params=np.ones(3)), {"x": x})
