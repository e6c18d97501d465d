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
    integer, fractional, resized, documented = run_mil(
        lambda x: (
            mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3),
            mb.upsample_nearest_neighbor(x=x, scale_factor_height=1.5, scale_factor_width=2.5),
            mb.resize_nearest_neighbor(x=x, target_size_height=8, target_size_width=4),
            mb.upsample_nearest_neighbor(x=mb.slice_by_size(x=x, begin=[0, 0, 0, 0], size=[1, 1, 1, 3]),
                                         scale_factor_height=1.0, scale_factor_width=1.12),
        ),
        {"x": x},
    )
    # coremltools' TestUpsampleNearestNeighborFractionalScales: 3 columns at 1.12 keep all three
    np.testing.assert_array_equal(documented, x[:, :1, :1, :3])
    t = torch.from_numpy(x)
    _close(integer, F.interpolate(t, scale_factor=(2, 3), mode="nearest"))
    # the index comes from the sizes (5 -> 7 rows, 6 -> 15 columns), not from 1 / scale
    _close(fractional, F.interpolate(t, size=(7, 15), mode="nearest"))
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


@pytest.mark.ops("crop")
def test_crop(x):
    got = run_mil(lambda x: mb.crop(x=x, crop_height=[1, 2], crop_width=[0, 3]), {"x": x})
    np.testing.assert_array_equal(got, torch.from_numpy(x)[..., 1:3, 0:3].numpy())


@pytest.mark.ops("crop_resize")
@pytest.mark.parametrize("target, roi, expected", [
    # coremltools' iOS14 TestCropResize cases: ALIGN_CORNERS crops of a 4 x 4 ramp (1..16)
    (2, [1, 1, 2, 2], [6, 7, 10, 11]),
    (1, [1, 1, 2, 2], [8.5]),
    (2, [2, 2, 1, 1], [11, 10, 7, 6]),
    (4, [1, 1, 2, 2], [6, 6 + 1 / 3, 6 + 2 / 3, 7, 7 + 1 / 3, 7 + 2 / 3, 8, 8 + 1 / 3, 8 + 2 / 3, 9, 9 + 1 / 3,
                       9 + 2 / 3, 10, 10 + 1 / 3, 10 + 2 / 3, 11]),
])
def test_crop_resize_align_corners_matches_coremltools_cases(target, roi, expected):
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    got = run_mil(lambda x: mb.crop_resize(x=x, roi=np.array(roi, np.float32).reshape(1, 1, 4, 1, 1),
                                           target_height=target, target_width=target, sampling_mode="ALIGN_CORNERS"),
                  {"x": x})
    np.testing.assert_allclose(got.reshape(-1), expected, rtol=1e-5)


@pytest.mark.ops("crop_resize")
def test_crop_resize_offset_corners_is_roi_align(rng):
    import torchvision

    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    boxes = np.array([[1.0, 2.0, 6.5, 8.0], [0.5, 0.0, 4.0, 3.0]], np.float32)  # h0, w0, h1, w1
    got = run_mil(lambda x: mb.crop_resize(x=x, boxes=boxes, box_indices=np.array([1, 0], np.int32), target_height=3,
                                           target_width=4, sampling_mode="OFFSET_CORNERS"), {"x": x}, target="iOS17")
    rois = torch.tensor([[1, 2.0, 1.0, 8.0, 6.5], [0, 0.0, 0.5, 3.0, 4.0]])  # (index, w0, h0, w1, h1)
    expected = torchvision.ops.roi_align(torch.from_numpy(x), rois, (3, 4), sampling_ratio=1, aligned=False)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.ops("resize")
def test_resize_ios17(x):
    linear, nearest = run_mil(
        lambda x: (
            mb.resize(x=x, shape=np.array([7, 9], np.int32), resized_dims=np.uint32(2),
                      sampling_mode="STRICT_ALIGN_CORNERS"),
            mb.resize(x=x, shape=np.array([0, 12], np.int32), resized_dims=np.uint32(2),
                      interpolation_mode="NEAREST_NEIGHBOR"),
        ),
        {"x": x}, target="iOS17",
    )
    t = torch.from_numpy(x)
    _close(linear, F.interpolate(t, size=(7, 9), mode="bilinear", align_corners=True))
    # nearest to the DEFAULT grid points j * 6 / 12, halves rounding up: columns 0, 1, 1, 2, 2, ...
    _close(nearest, t[..., (np.arange(12) // 2 + np.arange(12) % 2).clip(max=5)])


@pytest.mark.ops("resize")
def test_resize_nearest_rounds_to_the_nearest_grid_point():
    x = np.array([-6.174, 9.371], np.float32).reshape(1, 1, 2, 1)  # coremltools' iOS17 TestResize case
    got = run_mil(lambda x: mb.resize(x=x, shape=np.array([1, 1, 3, 2], np.int32), resized_dims=np.uint32(2),
                                      interpolation_mode="NEAREST_NEIGHBOR", sampling_mode="DEFAULT"),
                  {"x": x}, target="iOS17")
    np.testing.assert_array_equal(got.reshape(-1), np.array([-6.174, -6.174, 9.371, 9.371, 9.371, 9.371], np.float32))
