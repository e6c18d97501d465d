"""MIL activations against torch.nn.functional oracles."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from coremltools.proto import MIL_pb2

from modelbuild.runtime.mil import MIL_OPS, OpContext
from modelbuild.runtime.mil.opsets import IOS15
from modelbuild.runtime.mil.testing import mb, run_mil
from modelbuild.runtime.mil.values import TensorType


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.uniform(-4, 4, (2, 3, 4, 5)).astype(np.float32)


def _close(got: np.ndarray, expected: torch.Tensor, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=atol)


PARAMETERLESS = {
    "relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "silu": F.silu,
    "softplus": F.softplus, "softsign": F.softsign, "tanh": torch.tanh,
}


@pytest.mark.ops(*PARAMETERLESS)
def test_parameterless_activations(x):
    names = list(PARAMETERLESS)
    results = run_mil(lambda x: tuple(getattr(mb, n)(x=x) for n in names), {"x": x})
    for name, got in zip(names, results):
        _close(got, PARAMETERLESS[name](torch.from_numpy(x)))


@pytest.mark.ops("leaky_relu", "elu", "thresholded_relu", "linear_activation", "scaled_tanh", "sigmoid_hard",
                 "clamped_relu")
def test_activations_with_alpha_beta(x):
    got = run_mil(
        lambda x: (
            mb.leaky_relu(x=x, alpha=0.2), mb.elu(x=x, alpha=0.7), mb.thresholded_relu(x=x, alpha=1.5),
            mb.linear_activation(x=x, alpha=2.0, beta=-1.0), mb.scaled_tanh(x=x, alpha=1.7, beta=0.6),
            mb.sigmoid_hard(x=x, alpha=0.3, beta=0.4), mb.clamped_relu(x=x, alpha=0.1, beta=2.5),
        ),
        {"x": x},
    )
    t = torch.from_numpy(x)
    expected = [
        F.leaky_relu(t, 0.2), F.elu(t, 0.7), torch.where(t < 1.5, 0.0, t), 2 * t - 1, 1.7 * torch.tanh(0.6 * t),
        torch.clamp(0.3 * t + 0.4, 0, 1), torch.clamp(torch.where(t < 0, 0.1 * t, t), max=2.5),
    ]
    for g, e in zip(got, expected):
        _close(g, e)


@pytest.mark.ops("prelu", "softplus_parametric")
def test_per_channel_activations(x, rng):
    alpha = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    beta = rng.uniform(0.5, 2, 3).astype(np.float32)
    prelu, softplus = run_mil(
        lambda x: (mb.prelu(x=x, alpha=alpha), mb.softplus_parametric(x=x, alpha=alpha, beta=beta)), {"x": x}
    )
    t = torch.from_numpy(x)
    _close(prelu, F.prelu(t, torch.from_numpy(alpha)))
    a, b = (torch.from_numpy(v).reshape(1, 3, 1, 1) for v in (alpha, beta))
    _close(softplus, a * F.softplus(b * t))


@pytest.mark.ops("gelu")
@pytest.mark.parametrize("mode", ["EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"])
def test_gelu_modes(x, mode):
    got = run_mil(lambda x: mb.gelu(x=x, mode=mode), {"x": x})
    t = torch.from_numpy(x)
    expected = {
        "EXACT": F.gelu(t),
        "TANH_APPROXIMATION": F.gelu(t, approximate="tanh"),
        "SIGMOID_APPROXIMATION": t * torch.sigmoid(1.702 * t),
    }[mode]
    _close(got, expected, atol=1e-5)


@pytest.mark.ops("softmax")
@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_axis(x, axis):
    got = run_mil(lambda x: mb.softmax(x=x, axis=axis), {"x": x * 20})
    _close(got, F.softmax(torch.from_numpy(x * 20), dim=axis))


@pytest.mark.ops("softmax", "sigmoid")
def test_fp16_activations_stay_close_to_fp32(x):
    softmax, sigmoid = run_mil(lambda x: (mb.softmax(x=x, axis=1), mb.sigmoid(x=x)), {"x": x}, fp16=True)
    t = torch.from_numpy(x).half().float()
    np.testing.assert_allclose(softmax, F.softmax(t, dim=1).numpy(), atol=1e-3)
    np.testing.assert_allclose(sigmoid, torch.sigmoid(t).numpy(), atol=1e-3)
    assert not np.array_equal(sigmoid, torch.sigmoid(torch.from_numpy(x)).numpy())  # really fp16


@pytest.mark.ops("relu")
def test_relu_of_a_large_fp16_tensor_keeps_every_value_numpy_keeps():
    every = np.arange(2**16, dtype=np.uint16).view(np.float16)  # NaNs, infs, subnormals, -0
    context = OpContext("relu", ["y"], [TensorType(MIL_pb2.DataType.FLOAT16, None)])
    got = MIL_OPS.get("relu", opset=IOS15)(context, x=every)
    expected = np.maximum(every, 0)
    assert got.dtype == np.float16
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint16), expected[~nan].view(np.uint16))
