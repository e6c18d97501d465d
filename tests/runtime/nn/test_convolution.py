"""The `convolution` layer (and deconvolution) against torch.nn.functional."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime import ShapeMismatchError

pytestmark = pytest.mark.ops("convolution")


def _add_conv(weight, bias=None, *, stride=(1, 1), border="valid", groups=1, dilation=(1, 1),
              pads=(0, 0, 0, 0), asym="BOTTOM_RIGHT_HEAVY", deconv=False, output_shape=None):
    """Builder call; weight is in torch layout ([out, in/g, kh, kw] or deconv [in, out/g, kh, kw])."""
    kh, kw = weight.shape[2:]
    if deconv:
        kernel_channels, out_channels = weight.shape[0], weight.shape[1] * groups
        w = weight.transpose(2, 3, 0, 1)
    else:
        kernel_channels, out_channels = weight.shape[1], weight.shape[0]
        w = weight.transpose(2, 3, 1, 0)
    top, bottom, left, right = pads

    def add(builder):
        builder.add_convolution(
            "conv", kernel_channels, out_channels, kh, kw, stride[0], stride[1], border, groups, w,
            bias, bias is not None, is_deconv=deconv, output_shape=output_shape, input_name="x",
            output_name="y", dilation_factors=list(dilation), padding_top=top, padding_bottom=bottom,
            padding_left=left, padding_right=right, same_padding_asymmetry_mode=asym,
        )

    return add


def _same_pads(size, kernel, stride, top_left_heavy):
    """TensorFlow's SAME padding, split as NeuralNetwork.proto describes."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    small = total // 2
    return (total - small, small) if top_left_heavy else (small, total - small)


def _torch_conv(x, w, b, stride, pads, dilation=(1, 1), groups=1):
    top, bottom, left, right = pads
    xt = F.pad(torch.from_numpy(x), (left, right, top, bottom))
    bt = None if b is None else torch.from_numpy(b)
    return F.conv2d(xt, torch.from_numpy(w), bt, stride, 0, dilation, groups).numpy()


@pytest.mark.parametrize("stride, pads, dilation, groups, with_bias", [
    ((1, 1), (0, 0, 0, 0), (1, 1), 1, False),
    ((1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    ((2, 1), (1, 2, 0, 3), (1, 1), 1, True),
    ((1, 1), (2, 2, 2, 2), (2, 2), 1, False),
    ((2, 2), (1, 1, 1, 1), (1, 1), 2, True),
    ((1, 1), (1, 1, 1, 1), (1, 1), 4, False),  # depthwise
])
def test_valid_padding(run_layer, rng, stride, pads, dilation, groups, with_bias):
    x = rng.standard_normal((2, 4, 9, 10)).astype(np.float32)
    w = rng.standard_normal((8, 4 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32) if with_bias else None
    y = run_layer(_add_conv(w, b, stride=stride, groups=groups, dilation=dilation, pads=pads), {"x": x})
    np.testing.assert_allclose(y, _torch_conv(x, w, b, stride, pads, dilation, groups), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("asym", ["BOTTOM_RIGHT_HEAVY", "TOP_LEFT_HEAVY"])
@pytest.mark.parametrize("stride, kernel, size", [((2, 2), (3, 3), (8, 8)), ((1, 1), (4, 2), (7, 6)), ((3, 2), (5, 3), (10, 9))])
def test_same_padding(run_layer, rng, asym, stride, kernel, size):
    x = rng.standard_normal((1, 3) + size).astype(np.float32)
    w = rng.standard_normal((5, 3) + kernel).astype(np.float32)
    y = run_layer(_add_conv(w, stride=stride, border="same", asym=asym), {"x": x})
    heavy = asym == "TOP_LEFT_HEAVY"
    pads = _same_pads(size[0], kernel[0], stride[0], heavy) + _same_pads(size[1], kernel[1], stride[1], heavy)
    assert y.shape[2:] == (-(-size[0] // stride[0]), -(-size[1] // stride[1]))
    np.testing.assert_allclose(y, _torch_conv(x, w, None, stride, pads), rtol=1e-4, atol=1e-5)


def test_rank5_blob_treats_leading_axes_as_batch(run_layer, rng):
    x = rng.standard_normal((3, 6, 6)).astype(np.float32)  # legacy mapping: [1, 1, 3, 6, 6]
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    y = run_layer(_add_conv(w), {"x": x}, rank5=True)
    np.testing.assert_allclose(y.reshape(1, 2, 4, 4), _torch_conv(x[None], w, None, (1, 1), (0,) * 4), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride, groups, pads", [((2, 2), 1, (0, 0, 0, 0)), ((1, 2), 2, (1, 0, 0, 1)), ((3, 3), 1, (1, 1, 2, 2))])
def test_deconvolution_valid(run_layer, rng, stride, groups, pads):
    x = rng.standard_normal((1, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 6 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    y = run_layer(_add_conv(w, b, stride=stride, groups=groups, deconv=True, pads=pads), {"x": x})
    full = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, 0, 0, groups).numpy()
    top, bottom, left, right = pads
    expected = full[:, :, top:full.shape[2] - bottom, left:full.shape[3] - right]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dilation, groups, padding", [((2, 1), 1, (1, 2)), ((2, 3), 2, (2, 2))])
def test_dilated_deconvolution_with_padding_matches_torch(run_layer, rng, dilation, groups, padding):
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((2, 4 // groups, 3, 2)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    pads = (padding[0], padding[0], padding[1], padding[1])
    y = run_layer(_add_conv(w, b, stride=(2, 2), groups=groups, dilation=dilation, deconv=True, pads=pads), {"x": x})
    expected = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), 2, padding, 0, groups,
                                  dilation).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_deconvolution_with_output_shape(run_layer, rng):
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    # torch: stride 2, padding 1, output_padding 1 -> 8x8 (the extra row/column gets only the bias)
    y = run_layer(_add_conv(w, b, stride=(2, 2), deconv=True, pads=(1, 1, 1, 1), output_shape=(8, 8)), {"x": x})
    expected = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), 2, 1, 1).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_deconvolution_same_padding_doubles_the_size(run_layer, rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    y = run_layer(_add_conv(w, stride=(2, 2), border="same", deconv=True), {"x": x})
    full = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), None, 2).numpy()  # 12x12
    assert y.shape == (1, 3, 10, 10)
    np.testing.assert_allclose(y, full[:, :, 1:11, 1:11], rtol=1e-4, atol=1e-5)


def test_input_channels_must_fit_the_kernel(run_layer, rng):
    x = rng.standard_normal((1, 5, 6, 6)).astype(np.float32)
    w = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    with pytest.raises(ShapeMismatchError, match=r"convolution layer 'conv': input channels: got 5.*expected.*= 4"):
        run_layer(_add_conv(w), {"x": x})


def test_weights_from_a_second_input(run_layer, rng):
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)

    def add(builder):
        builder.add_convolution("conv", 3, 4, 3, 3, 1, 1, "valid", 1, None, None, False,
                                input_name=["x", "w"], output_name="y")

    y = run_layer(add, {"x": x, "w": w})
    np.testing.assert_allclose(y, _torch_conv(x, w, None, (1, 1), (0, 0, 0, 0)), rtol=1e-4, atol=1e-5)
