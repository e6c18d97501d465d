"""Random layers: shapes, ranges, moments and seeding (values cannot match Core ML's stream)."""
from __future__ import annotations

import numpy as np
import pytest

SHAPE = (200, 300)


def _layers(raw_layer, family, params):
    return [
        (f"{family}Like", raw_layer(f"{family}Like", ("x",), **params), {"x": np.zeros(SHAPE)}),
        (f"{family}Static", raw_layer(f"{family}Static", (), outputShape=list(SHAPE), **params), {"x": np.zeros(1)}),
        (f"{family}Dynamic", raw_layer(f"{family}Dynamic", ("s",), **params), {"s": np.array(SHAPE, dtype=np.float32)}),
    ]


@pytest.mark.ops("randomNormalLike", "randomNormalStatic", "randomNormalDynamic")
def test_random_normal(run_layer, raw_layer):
    for _, add, feeds in _layers(raw_layer, "randomNormal", dict(seed=3, mean=2.0, stdDev=0.5)):
        y = run_layer(add, feeds)
        assert y.shape == SHAPE
        assert abs(y.mean() - 2.0) < 0.01 and abs(y.std() - 0.5) < 0.01
        np.testing.assert_array_equal(y, run_layer(add, feeds))  # same seed, same values


@pytest.mark.ops("randomUniformLike", "randomUniformStatic", "randomUniformDynamic")
def test_random_uniform(run_layer, raw_layer):
    for _, add, feeds in _layers(raw_layer, "randomUniform", dict(seed=4, minVal=-1.0, maxVal=3.0)):
        y = run_layer(add, feeds)
        assert y.shape == SHAPE and y.min() >= -1.0 and y.max() < 3.0 and abs(y.mean() - 1.0) < 0.02


@pytest.mark.ops("randomBernoulliLike", "randomBernoulliStatic", "randomBernoulliDynamic")
def test_random_bernoulli(run_layer, raw_layer):
    for _, add, feeds in _layers(raw_layer, "randomBernoulli", dict(seed=5, prob=0.3)):
        y = run_layer(add, feeds)
        assert set(np.unique(y)) <= {0.0, 1.0} and abs(y.mean() - 0.3) < 0.01


@pytest.mark.ops("categoricalDistribution")
@pytest.mark.parametrize("is_logits", [True, False])
def test_categorical_distribution_frequencies(run_layer, raw_layer, is_logits):
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]], dtype=np.float32)
    data = np.log(probs + 1e-12) if is_logits else probs
    add = raw_layer("categoricalDistribution", seed=7, numSamples=20000, isLogits=is_logits, temperature=1.0)
    y = run_layer(add, {"x": data})
    assert y.shape == (2, 20000)
    for row, expected in zip(y, probs):
        np.testing.assert_allclose(np.bincount(row.astype(int), minlength=3) / 20000, expected, atol=0.015)
