"""max_pool, avg_pool, l2_pool against torch oracles: pad types, ceil_mode, excluded padding."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.testing import mb, run_mil


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(got: np.ndarray, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.standard_normal((2, 3, 9, 10)).astype(np.float32)


@pytest.mark.ops("max_pool", "avg_pool")
def test_valid_and_symmetric_custom_padding(x):
    results = run_mil(
        lambda x: (
            mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="valid"),
            mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1]),
            mb.avg_pool(x=x, kernel_sizes=[3, 2], strides=[1, 2], pad_type="custom", pad=[1, 1, 1, 1],
                        exclude_padding_from_average=False),
            mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1],
                        exclude_padding_from_average=True),
        ),
        {"x": x},
    )
    t = _t(x)
    expected = [
        F.max_pool2d(t, 3, 2),
        F.max_pool2d(t, 3, 2, padding=1),
        F.avg_pool2d(t, (3, 2), (1, 2), padding=1, count_include_pad=True),
        F.avg_pool2d(t, 3, 2, padding=1, count_include_pad=False),
    ]
    for got, want in zip(results, expected):
        _close(got, want)


@pytest.mark.ops("max_pool", "avg_pool")
def test_ceil_mode(x):
    max_ceil, avg_ceil = run_mil(
        lambda x: (
            mb.max_pool(x=x, kernel_sizes=[2, 3], strides=[2, 2], pad_type="valid", ceil_mode=True),
            mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1],
                        ceil_mode=True, exclude_padding_from_average=True),
        ),
        {"x": x},
    )
    _close(max_ceil, F.max_pool2d(_t(x), (2, 3), 2, ceil_mode=True))
    _close(avg_ceil, F.avg_pool2d(_t(x), 3, 2, padding=1, ceil_mode=True, count_include_pad=False))


@pytest.mark.ops("max_pool", "avg_pool")
def test_same_padding_puts_the_odd_pad_after(x):
    # H=9, W=10, kernel 2, stride 2: H needs no padding, W needs (10/2-1)*2+2-10 = 0; kernel 3: 1 and 1
    got_max, got_avg = run_mil(
        lambda x: (
            mb.max_pool(x=x, kernel_sizes=[2, 3], strides=[2, 2], pad_type="same"),
            mb.avg_pool(x=x, kernel_sizes=[2, 3], strides=[2, 2], pad_type="same",
                        exclude_padding_from_average=True),
        ),
        {"x": x},
    )
    # H: out 5, total pad (5-1)*2+2-9 = 1 -> (0, 1); W: out 5, total (5-1)*2+3-10 = 1 -> (0, 1)
    padded = F.pad(_t(x), (0, 1, 0, 1), value=-np.inf)
    _close(got_max, F.max_pool2d(padded, (2, 3), 2))
    sums = F.avg_pool2d(F.pad(_t(x), (0, 1, 0, 1)), (2, 3), 2) * 6
    counts = F.avg_pool2d(F.pad(torch.ones(1, 1, 9, 10), (0, 1, 0, 1)), (2, 3), 2) * 6
    _close(got_avg, sums / counts)


@pytest.mark.ops("l2_pool")
def test_l2_pool(x):
    got = run_mil(lambda x: mb.l2_pool(x=x, kernel_sizes=[2, 2], strides=[2, 1], pad_type="valid"), {"x": x})
    _close(got, F.lp_pool2d(_t(x), 2, (2, 2), (2, 1)))


@pytest.mark.ops("max_pool", "avg_pool")
def test_1d_and_3d_pools(rng):
    x1 = rng.standard_normal((1, 2, 11)).astype(np.float32)
    x3 = rng.standard_normal((1, 2, 4, 6, 6)).astype(np.float32)
    got1, got3 = run_mil(
        lambda a, b: (mb.max_pool(x=a, kernel_sizes=[3], strides=[2], pad_type="valid"),
                      mb.avg_pool(x=b, kernel_sizes=[2, 2, 2], strides=[2, 2, 2], pad_type="valid")),
        {"a": x1, "b": x3},
    )
    _close(got1, F.max_pool1d(_t(x1), 3, 2))
    _close(got3, F.avg_pool3d(_t(x3), 2, 2))
