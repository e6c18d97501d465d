"""Random ops: shapes, ranges, seeds and distribution statistics (Core ML's own values are not reproducible)."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime.mil.testing import mb, to_program

N = 20000


def _run(build):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1,))])
    def program(x):
        return build(x)

    runtime = to_program(program)
    return lambda: list(runtime.run({"x": np.zeros(1, np.float32)}).values())


@pytest.mark.ops("random_uniform", "random_normal", "random_bernoulli")
def test_distributions_and_seeds():
    shape = np.array([N], np.int32)
    run = _run(lambda x: (
        mb.random_uniform(shape=shape, low=-2.0, high=3.0, seed=7),
        mb.random_normal(shape=shape, mean=1.5, stddev=0.5, seed=7),
        mb.random_bernoulli(shape=shape, prob=0.3, seed=7),
        mb.random_uniform(shape=shape, low=0.0, high=1.0),
    ))
    uniform, normal, bernoulli, unseeded = run()
    uniform_again, normal_again, _, unseeded_again = run()
    assert uniform.shape == (N,) and -2 <= uniform.min() and uniform.max() < 3
    assert abs(uniform.mean() - 0.5) < 0.05 and abs(uniform.var() - 25 / 12) < 0.1
    assert abs(normal.mean() - 1.5) < 0.02 and abs(normal.std() - 0.5) < 0.02
    assert set(np.unique(bernoulli)) == {0.0, 1.0} and abs(bernoulli.mean() - 0.3) < 0.02
    np.testing.assert_array_equal(uniform, uniform_again)  # a seed makes runs reproducible
    np.testing.assert_array_equal(normal, normal_again)
    assert not np.array_equal(unseeded, unseeded_again)  # seed -1: fresh values every run


@pytest.mark.ops("random_categorical")
def test_categorical_frequencies_follow_the_probabilities():
    probabilities = np.array([[0.1, 0.6, 0.3], [0.8, 0.1, 0.1]], np.float32)
    run = _run(lambda x: (
        mb.random_categorical(x=probabilities, mode="probs", size=N, seed=3),
        mb.random_categorical(x=np.log(probabilities), mode="logits", size=N, seed=4),
    ))
    for draws in run():
        assert draws.shape == (2, N)
        for row, expected in zip(draws, probabilities):
            np.testing.assert_allclose(np.bincount(row.astype(int), minlength=3) / N, expected, atol=0.02)
