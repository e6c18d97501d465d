"""The `pooling` layer against torch pooling (padding modes, global, exclude padding)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.ops("pooling")


def _add_pool(kind, kernel, stride, padding_type="VALID", *, exclude=True, is_global=False, pads=(0, 0, 0, 0),
              asym="BOTTOM_RIGHT_HEAVY"):
    top, bottom, left, right = pads

    def add(builder):
        builder.add_pooling("pool", kernel[0], kernel[1], stride[0], stride[1], kind, padding_type, "x", "y",
                            exclude_pad_area=exclude, is_global=is_global, padding_top=top, padding_bottom=bottom,
                            padding_left=left, padding_right=right, same_padding_asymmetry_mode=asym)

    return add


def _t(x):
    return torch.from_numpy(x)


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE", "L2"])
def test_global_pooling(run_layer, rng, kind):
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    y = run_layer(_add_pool(kind, (1, 1), (1, 1), is_global=True), {"x": x})
    expected = {"MAX": x.max(axis=(2, 3), keepdims=True), "AVERAGE": x.mean(axis=(2, 3), keepdims=True),
                "L2": np.sqrt((x.astype(np.float64) ** 2).sum(axis=(2, 3), keepdims=True))}[kind]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 0, 1, 1), (1, 1, 1, 1)])
def test_valid_max_pooling(run_layer, rng, pads):
    x = rng.standard_normal((1, 3, 8, 9)).astype(np.float32)
    y = run_layer(_add_pool("MAX", (3, 3), (2, 2), pads=pads), {"x": x})
    top, bottom, left, right = pads
    expected = F.max_pool2d(F.pad(_t(x), (left, right, top, bottom), value=-np.inf), 3, 2).numpy()
    np.testing.assert_allclose(y, expected)


@pytest.mark.parametrize("exclude", [True, False])
def test_valid_average_pooling_with_padding(run_layer, rng, exclude):
    x = rng.standard_normal((1, 2, 7, 7)).astype(np.float32)
    y = run_layer(_add_pool("AVERAGE", (3, 3), (2, 2), pads=(1, 1, 1, 1), exclude=exclude), {"x": x})
    expected = F.avg_pool2d(_t(x), 3, 2, padding=1, count_include_pad=not exclude).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_l2_pooling(run_layer, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    y = run_layer(_add_pool("L2", (2, 2), (2, 2)), {"x": x})
    np.testing.assert_allclose(y, F.lp_pool2d(_t(x), 2, 2, 2).numpy(), rtol=1e-5)


@pytest.mark.parametrize("asym", ["BOTTOM_RIGHT_HEAVY", "TOP_LEFT_HEAVY"])
def test_same_padding_max(run_layer, rng, asym):
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    y = run_layer(_add_pool("MAX", (2, 2), (2, 2), "SAME", asym=asym), {"x": x})
    assert y.shape == (1, 2, 4, 4)  # no padding needed: plain 2x2 pooling
    np.testing.assert_allclose(y, F.max_pool2d(_t(x), 2, 2).numpy())
    x = rng.standard_normal((1, 2, 7, 7)).astype(np.float32)
    y = run_layer(_add_pool("MAX", (4, 4), (2, 2), "SAME", asym=asym), {"x": x})
    # total padding 3 per axis: 1 before and 2 after (bottom-right heavy) or 2 before, 1 after
    before, after = (1, 2) if asym == "BOTTOM_RIGHT_HEAVY" else (2, 1)
    expected = F.max_pool2d(F.pad(_t(x), (before, after, before, after), value=-np.inf), 4, 2).numpy()
    np.testing.assert_allclose(y, expected)


@pytest.mark.parametrize("exclude", [True, False])
def test_same_padding_average_counts(run_layer, rng, exclude):
    x = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    y = run_layer(_add_pool("AVERAGE", (3, 3), (1, 1), "SAME", exclude=exclude), {"x": x})
    expected = F.avg_pool2d(_t(x), 3, 1, padding=1, count_include_pad=not exclude).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
@pytest.mark.parametrize("size, pad", [(6, 1), (7, 1), (8, 0)])
def test_include_last_pixel_is_ceil_mode(run_layer, rng, kind, size, pad):
    x = rng.standard_normal((1, 2, size, size)).astype(np.float32)
    y = run_layer(_add_pool(kind, (3, 3), (2, 2), "INCLUDE_LAST_PIXEL", pads=(pad, pad, pad, pad), exclude=False), {"x": x})
    if kind == "MAX":
        expected = F.max_pool2d(_t(x), 3, 2, padding=pad, ceil_mode=True).numpy()
    else:
        expected = F.avg_pool2d(_t(x), 3, 2, padding=pad, ceil_mode=True, count_include_pad=True).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
