"""Resampling ops against torch.nn.functional.interpolate and the grids documented by coremltools."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.testing import mb, run_mil


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.standard_normal((1, 2, 5, 6)).astype(np.float32)


def _close(got: np.ndarray, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.ops("upsample_nearest_neighbor", "resize_nearest_neighbor")
def test_nearest_neighbour(x):
    integer, fractional, resized = run_mil(
        lambda x: (
            mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3),
            mb.upsample_nearest_neighbor(x=x, scale_factor_height=1.5, scale_factor_width=2.5),
            mb.resize_nearest_neighbor(x=x, target_size_height=8, target_size_width=4),
        ),
        {"x": x},
    )
    t = torch.from_numpy(x)
    _close(integer, F.interpolate(t, scale_factor=(2, 3), mode="nearest"))
    _close(fractional, F.interpolate(t, scale_factor=(1.5, 2.5), mode="nearest"))
    _close(resized, F.interpolate(t, size=(8, 4), mode="nearest"))


@pytest.mark.ops("upsample_bilinear", "resize_bilinear")
def test_bilinear_align_corners_and_half_pixel(x):
    aligned, half_pixel, strict, unaligned = run_mil(
        lambda x: (
            mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=2, align_corners=True),
            mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=3, align_corners=False),
            mb.resize_bilinear(x=x, target_size_height=9, target_size_width=4, sampling_mode="STRICT_ALIGN_CORNERS"),
            mb.resize_bilinear(x=x, target_size_height=9, target_size_width=4, sampling_mode="UNALIGN_CORNERS"),
        ),
        {"x": x},
    )
    t = torch.from_numpy(x)
    _close(aligned, F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True))
    _close(half_pixel, F.interpolate(t, scale_factor=(2, 3), mode="bilinear", align_corners=False))
    _close(strict, F.interpolate(t, size=(9, 4), mode="bilinear", align_corners=True))
    _close(unaligned, F.interpolate(t, size=(9, 4), mode="bilinear", align_corners=False))


# the grid points of coremltools' resize_bilinear docstring for Xin = 2
DOCUMENTED_GRIDS = {
    ("UNALIGN_CORNERS", 5): [0.0, 0.1, 0.5, 0.9, 1.0],
    ("STRICT_ALIGN_CORNERS", 5): [0.0, 0.25, 0.5, 0.75, 1.0],
    ("DEFAULT", 5): [0.0, 0.4, 0.8, 1.0, 1.0],
    ("OFFSET_CORNERS", 5): [0.1, 0.3, 0.5, 0.7, 0.9],
    ("UNALIGN_CORNERS", 6): [0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0],
    ("DEFAULT", 6): [0.0, 1 / 3, 2 / 3, 1.0, 1.0, 1.0],
    ("OFFSET_CORNERS", 6): [1 / 12, 3 / 12, 5 / 12, 7 / 12, 9 / 12, 11 / 12],
    ("ALIGN_CORNERS", 1): [0.5],
}


@pytest.mark.ops("resize_bilinear")
@pytest.mark.parametrize("mode, size", list(DOCUMENTED_GRIDS))
def test_resize_bilinear_sampling_modes_match_documented_grids(mode, size):
    x = np.array([[[[2.0, 6.0]]]], np.float32)  # one row: value = 2 + 4 * coordinate
    got = run_mil(lambda x: mb.resize_bilinear(x=x, target_size_height=1, target_size_width=size,
                                               sampling_mode=mode), {"x": x})
    np.testing.assert_allclose(got[0, 0, 0], 2 + 4 * np.array(DOCUMENTED_GRIDS[mode, size]), rtol=1e-6)


@pytest.mark.ops("upsample_bilinear")
def test_upsample_bilinear_without_half_pixel_centres_is_asymmetric():
    x = np.array([[[[2.0, 6.0]]]], np.float32)
    got = run_mil(lambda x: mb.upsample_bilinear(x=x, scale_factor_height=1.0, scale_factor_width=2.5,
                                                 align_corners=False, half_pixel_centers=False), {"x": x})
    np.testing.assert_allclose(got[0, 0, 0], 2 + 4 * np.array(DOCUMENTED_GRIDS["DEFAULT", 5]), rtol=1e-6)
