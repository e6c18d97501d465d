"""Normalisation, softmax and per-channel affine layers against torch/numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime import ShapeMismatchError


def _t(x):
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


@pytest.mark.ops("batchnorm")
def test_batchnorm_with_statistics(run_layer, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    gamma, beta, mean = (rng.standard_normal(3).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2, 3).astype(np.float32)
    y = run_layer(lambda b: b.add_batchnorm("bn", 3, gamma, beta, mean, var, "x", "y", epsilon=1e-3), {"x": x})
    expected = F.batch_norm(_t(x), _t(mean), _t(var), _t(gamma), _t(beta), False, 0.0, 1e-3).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ShapeMismatchError, match="channels"):
        run_layer(lambda b: b.add_batchnorm("bn", 3, gamma, beta, mean, var, "x", "y"), {"x": np.zeros((1, 4, 2, 2))})


@pytest.mark.ops("batchnorm")
def test_batchnorm_instance_normalization(run_layer, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    gamma, beta = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    y = run_layer(lambda b: b.add_batchnorm("bn", 3, gamma, beta, input_name="x", output_name="y", compute_mean_var=True,
                                            instance_normalization=True), {"x": x})
    expected = F.instance_norm(_t(x), weight=_t(gamma), bias=_t(beta), eps=1e-5).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.ops("mvn")
@pytest.mark.parametrize("across, normalize", [(False, False), (False, True), (True, True)])
def test_mean_variance_normalization(run_layer, rng, across, normalize):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float64)
    y = run_layer(lambda b: b.add_mvn("m", "x", "y", across_channels=across, normalize_variance=normalize, epsilon=1e-4), {"x": x})
    axes = (1, 2, 3) if across else (2, 3)
    expected = x - x.mean(axis=axes, keepdims=True)
    if normalize:
        expected = expected / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-4)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.ops("l2normalize")
def test_l2_normalize(run_layer, rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float64)
    y = run_layer(lambda b: b.add_l2_normalize("l2", "x", "y", epsilon=1e-6), {"x": x})
    np.testing.assert_allclose(y, x / np.sqrt((x**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-6), rtol=1e-5)


@pytest.mark.ops("lrn")
def test_local_response_normalization(run_layer, rng):
    x = rng.standard_normal((1, 6, 3, 3)).astype(np.float64)
    alpha, beta, size, k = 1e-2, 0.75, 3, 2.0
    y = run_layer(lambda b: b.add_lrn("lrn", "x", "y", alpha, beta, size, k), {"x": x})
    squares = np.pad(x**2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = sum(squares[:, i:i + 6] for i in range(size))
    np.testing.assert_allclose(y, x / (k + alpha / size * window) ** beta, rtol=1e-5)


@pytest.mark.ops("softmax", "softmaxND")
def test_softmax_axes(run_layer, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 5
    np.testing.assert_allclose(run_layer(lambda b: b.add_softmax("s", "x", "y"), {"x": x}),
                               torch.softmax(_t(x), dim=-3).numpy(), rtol=1e-5, atol=1e-7)
    for axis in (0, -1, 2):
        np.testing.assert_allclose(run_layer(lambda b: b.add_softmax_nd("s", "x", "y", axis), {"x": x}),
                                   torch.softmax(_t(x), dim=axis).numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.ops("layerNormalization")
def test_layer_normalization(run_layer, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    gamma, beta = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_layer_normalization("ln", "x", "y", [3, 4], gamma, beta, eps=1e-5), {"x": x})
    np.testing.assert_allclose(y, F.layer_norm(_t(x), (3, 4), _t(gamma), _t(beta), 1e-5).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.ops("scale", "bias")
@pytest.mark.parametrize("shape", [(1,), (3,), (1, 4, 5), (3, 4, 5)])
def test_scale_and_bias_shapes(run_layer, rng, shape):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal(shape).astype(np.float32)
    bias = rng.standard_normal(shape).astype(np.float32)
    bshape = (-1, 1, 1) if len(shape) == 1 else shape
    y = run_layer(lambda b: b.add_scale("sc", w, bias, True, "x", "y", shape_scale=shape, shape_bias=shape), {"x": x})
    np.testing.assert_allclose(y, x * w.reshape(bshape) + bias.reshape(bshape), rtol=1e-6)
    y = run_layer(lambda b: b.add_bias("bi", bias, "x", "y", shape_bias=shape), {"x": x})
    np.testing.assert_allclose(y, x + bias.reshape(bshape), rtol=1e-6)
