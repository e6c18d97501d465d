"""upsample and resizeBilinear against torch and a per-pixel reading of SamplingMode."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def _bilinear_loop(x, rows, cols):
    """Textbook bilinear interpolation of x[..., H, W] at source coordinates (independent oracle)."""
    h, w = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (len(rows), len(cols)))
    for i, r in enumerate(rows):
        r0 = int(np.floor(r)); r1 = min(r0 + 1, h - 1); fr = r - r0  # noqa: E702
        for j, c in enumerate(cols):
            c0 = int(np.floor(c)); c1 = min(c0 + 1, w - 1); fc = c - c0  # noqa: E702
            top = x[..., r0, c0] * (1 - fc) + x[..., r0, c1] * fc
            bottom = x[..., r1, c0] * (1 - fc) + x[..., r1, c1] * fc
            out[..., i, j] = top * (1 - fr) + bottom * fr
    return out


@pytest.mark.ops("upsample")
def test_upsample_nearest(run_layer, rng):
    x = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_upsample("u", 2, 3, "x", "y", mode="NN"), {"x": x})
    np.testing.assert_array_equal(y, F.interpolate(torch.from_numpy(x), scale_factor=(2, 3), mode="nearest").numpy())


@pytest.mark.ops("upsample")
@pytest.mark.parametrize("mode, align", [("ALIGN_CORNERS_TRUE", True), ("ALIGN_CORNERS_FALSE", False)])
def test_upsample_bilinear_align_modes(run_layer, rng, mode, align):
    x = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    y = run_layer(lambda b: b.add_upsample("u", 2, 2, "x", "y", mode="BILINEAR", linear_upsample_mode=mode), {"x": x})
    expected = F.interpolate(torch.from_numpy(x), scale_factor=2, mode="bilinear", align_corners=align).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.ops("upsample")
def test_upsample_bilinear_default_samples_at_i_over_scale(run_layer, rng):
    x = rng.standard_normal((1, 1, 3, 4)).astype(np.float64)
    y = run_layer(lambda b: b.add_upsample("u", 2, 3, "x", "y", mode="BILINEAR"), {"x": x})
    rows = np.minimum(2, np.arange(6) / 2)
    cols = np.minimum(3, np.arange(12) / 3)
    np.testing.assert_allclose(y, _bilinear_loop(x, rows, cols), rtol=1e-5, atol=1e-6)


@pytest.mark.ops("resizeBilinear")
@pytest.mark.parametrize("mode", ["STRICT_ALIGN_ENDPOINTS_MODE", "ALIGN_ENDPOINTS_MODE", "UPSAMPLE_MODE", "ROI_ALIGN_MODE"])
@pytest.mark.parametrize("target", [(5, 7), (1, 2)])
def test_resize_bilinear_sampling_modes(run_layer, rng, mode, target):
    x = rng.standard_normal((1, 2, 4, 6)).astype(np.float64)
    y = run_layer(lambda b: b.add_resize_bilinear("r", "x", "y", target[0], target[1], mode=mode), {"x": x})

    def grid(size, n):
        if mode == "STRICT_ALIGN_ENDPOINTS_MODE":
            return np.linspace(0, size - 1, n)
        if mode == "ALIGN_ENDPOINTS_MODE":
            return np.array([(size - 1) / 2]) if n == 1 else np.linspace(0, size - 1, n)
        if mode == "UPSAMPLE_MODE":
            return np.minimum(size - 1, np.linspace(0, size - size / n, n))
        spacing = max(1, size - 1) / n
        return np.minimum(size - 1, np.linspace(0.5 * spacing, 0.5 * spacing + (n - 1) * spacing, n))

    np.testing.assert_allclose(y, _bilinear_loop(x, grid(4, target[0]), grid(6, target[1])), rtol=1e-5, atol=1e-6)
    if mode == "STRICT_ALIGN_ENDPOINTS_MODE" and target[0] > 1:
        expected = F.interpolate(torch.from_numpy(x), size=target, mode="bilinear", align_corners=True).numpy()
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def _add_crop_resize(target, mode, box_mode="CORNERS_HEIGHT_FIRST", normalized=False, spatial_scale=1.0):
    return lambda b: b.add_crop_resize("crop", ["x", "roi"], "y", target_height=target[0], target_width=target[1],
                                       mode=mode, normalized_roi=normalized, box_indices_mode=box_mode,
                                       spatial_scale=spatial_scale)


@pytest.mark.ops("cropResize")
def test_crop_resize_roi_align_mode_matches_torchvision_roi_align(run_layer, rng):
    from torchvision.ops import roi_align

    x = rng.standard_normal((1, 2, 3, 9, 11)).astype(np.float32)
    # [batch index, h_start, w_start, h_end, w_end] in the coordinates of an image twice as large
    roi = np.array([[1, 2.0, 1.0, 13.0, 17.0], [0, 0.0, 4.0, 7.0, 9.0]], dtype=np.float32)
    y = run_layer(_add_crop_resize((4, 3), "ROI_ALIGN_MODE", spatial_scale=0.5),
                  {"x": x, "roi": roi.reshape(2, 1, 5, 1, 1)})
    boxes = torch.from_numpy(roi[:, [0, 2, 1, 4, 3]])  # torchvision: [batch, x1, y1, x2, y2]
    expected = roi_align(torch.from_numpy(x[0]), boxes, (4, 3), spatial_scale=0.5, sampling_ratio=1, aligned=False)
    assert y.shape == (2, 1, 3, 4, 3)
    np.testing.assert_allclose(y[:, 0], expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.ops("cropResize")
@pytest.mark.parametrize("mode", ["STRICT_ALIGN_ENDPOINTS_MODE", "ALIGN_ENDPOINTS_MODE", "UPSAMPLE_MODE"])
def test_crop_resize_crops_every_image_with_centre_size_boxes(run_layer, rng, mode):
    x = rng.standard_normal((1, 2, 1, 5, 6)).astype(np.float64)
    # CENTER_SIZE_WIDTH_FIRST, normalized: [w_centre, h_centre, width, height] of the (W-1, H-1) span
    roi = np.array([[0.5, 0.5, 0.6, 0.5], [0.4, 0.25, 0.2, 0.5]]).reshape(2, 1, 4, 1, 1)
    y = run_layer(_add_crop_resize((3, 1), mode, "CENTER_SIZE_WIDTH_FIRST", normalized=True), {"x": x, "roi": roi})

    def grid(start, end, n):
        if mode == "UPSAMPLE_MODE":
            return np.minimum(end, start + np.arange(n) * (end - start + 1) / n)
        if n == 1:
            return np.array([start if mode == "STRICT_ALIGN_ENDPOINTS_MODE" else (start + end) / 2])
        return np.linspace(start, end, n)

    assert y.shape == (2, 2, 1, 3, 1)
    for n, (wc, hc, bw, bh) in enumerate(roi.reshape(2, 4)):
        rows = grid((hc - bh / 2) * 4, (hc + bh / 2) * 4, 3)
        cols = grid((wc - bw / 2) * 5, (wc + bw / 2) * 5, 1)
        np.testing.assert_allclose(y[n], _bilinear_loop(x[0], rows, cols), rtol=1e-5, atol=1e-6)
