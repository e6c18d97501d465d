"""resample and affine against torch's grid_sample / affine_grid and coremltools' TestResample values."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.testing import mb, run_mil

IMAGE = np.array([11.0, 22.0, 33.0, 44.0], np.float32).reshape(1, 1, 2, 2)
COORDINATES = np.array([-1.0, -2.0, -3.7, -1.0, 0.0, 0.0, 3.5, 1.2], np.float32).reshape(1, 2, 2, 2)


@pytest.mark.ops("resample")
@pytest.mark.parametrize("sampling, padding, value, coordinates_mode, align, expected", [
    # coremltools' iOS15 TestResample: build_0 ... build_3
    ("bilinear", "constant", 6.17, "normalized_minus_one_to_one", True, [8.585, 6.17, 27.5, 6.17]),
    ("nearest", "border", -1.0, "unnormalized", False, [11.0, 11.0, 11.0, 44.0]),
    ("bilinear", "reflection", -1.0, "normalized_zero_to_one", True, [22.0, 36.3, 11.0, 34.1]),
    ("nearest", "symmetric", -1.0, "normalized_zero_to_one", False, [22.0, 33.0, 11.0, 33.0]),
])
def test_resample_matches_coremltools_cases(sampling, padding, value, coordinates_mode, align, expected):
    got = run_mil(lambda x, c: mb.resample(x=x, coordinates=c, sampling_mode=sampling, padding_mode=padding,
                                           padding_value=value, coordinates_mode=coordinates_mode,
                                           align_corners=align), {"x": IMAGE, "c": COORDINATES})
    np.testing.assert_allclose(got.reshape(-1), expected, rtol=1e-5)


@pytest.mark.ops("resample")
@pytest.mark.parametrize("sampling", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding, torch_padding, aligns", [
    ("constant", "zeros", (True, False)), ("border", "border", (True, False)), ("reflection", "reflection", (True,)),
])
def test_resample_matches_grid_sample(sampling, padding, torch_padding, aligns, rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = rng.uniform(-1.6, 1.6, (2, 4, 7, 2)).astype(np.float32)
    for align in aligns:
        got = run_mil(lambda x, c: mb.resample(x=x, coordinates=c, sampling_mode=sampling, padding_mode=padding,
                                               padding_value=0.0, coordinates_mode="normalized_minus_one_to_one",
                                               align_corners=align), {"x": x, "c": grid})
        expected = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode=sampling,
                                 padding_mode=torch_padding, align_corners=align)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.ops("affine")
@pytest.mark.parametrize("align", [True, False])
def test_affine_matches_affine_grid(align, rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    theta = np.array([[0.9, -0.2, 0.1, 0.3, 1.1, -0.2]], np.float32)
    got = run_mil(lambda x: mb.affine(x=x, transform_matrix=theta, output_height=4, output_width=7,
                                      sampling_mode="bilinear", padding_mode="constant", padding_value=0.0,
                                      coordinates_mode="normalized_minus_one_to_one", align_corners=align), {"x": x})
    grid = F.affine_grid(torch.from_numpy(theta).reshape(1, 2, 3).expand(2, 2, 3), [2, 3, 4, 7], align_corners=align)
    expected = F.grid_sample(torch.from_numpy(x), grid, padding_mode="zeros", align_corners=align)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)
