"""The `convolution` layer: convolution and deconvolution with torch kernels.

Weights: [C_out, C_in / groups, kH, kW] for convolution, [C_in, C_out / groups,
kH, kW] for deconvolution (NeuralNetwork.proto). Inputs are [..., C, H, W]; every
leading axis is batch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, as_batched_chw, from_batched_chw
from modelbuild.runtime.nn.padding import Pads, border_amounts, pair, same_pads


def _tensor(layer: Layer, field: str, shape: tuple[int, ...], channel_axis_shape=None) -> torch.Tensor:
    def build() -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(
            layer.weights(field, shape, channel_axis_shape=channel_axis_shape)))
    return layer.cached(f"torch:{field}", build)


def _pads(layer: Layer, hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]) -> Pads:
    p = layer.params
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        return same_pads(hw, kernel, stride, p.same.asymmetryMode == 1)
    return border_amounts(p.valid)


def _convolve(layer: Layer, x: torch.Tensor, dynamic_weight: torch.Tensor | None = None) -> torch.Tensor:
    p = layer.params
    groups = int(p.nGroups) or 1
    kernel, stride, dilation = pair(p.kernelSize, 3), pair(p.stride, 1), pair(p.dilationFactor, 1)
    c_in = x.shape[1]
    if c_in != p.kernelChannels * groups:
        raise layer.mismatch(
            "input channels", f"{c_in} (input shape {list(x.shape)})",
            f"kernelChannels x nGroups = {p.kernelChannels} x {groups} = {p.kernelChannels * groups}",
        )
    shape = (int(p.outputChannels), int(p.kernelChannels)) + kernel
    if dynamic_weight is not None:
        if tuple(dynamic_weight.shape) != shape:
            raise layer.mismatch("weight input shape", list(dynamic_weight.shape), list(shape))
        weight = dynamic_weight
    else:
        weight = _tensor(layer, "weights", shape)
    bias = _tensor(layer, "bias", (int(p.outputChannels),)) if p.hasBias else None
    effective = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    top, bottom, left, right = _pads(layer, (x.shape[2], x.shape[3]), effective, stride)
    for size, lo, hi, k, name in ((x.shape[2], top, bottom, effective[0], "height"),
                                  (x.shape[3], left, right, effective[1], "width")):
        if size + lo + hi < k:
            raise layer.mismatch(f"padded input {name}", size + lo + hi, f">= effective kernel size {k}")
    if top == bottom and left == right:
        return F.conv2d(x, weight, bias, stride, (top, left), dilation, groups)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, stride, 0, dilation, groups)


def _deconvolve(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    p = layer.params
    groups = int(p.nGroups) or 1
    kernel, stride, dilation = pair(p.kernelSize, 3), pair(p.stride, 1), pair(p.dilationFactor, 1)
    c_in = x.shape[1]
    if c_in != p.kernelChannels:
        raise layer.mismatch("input channels of the deconvolution", c_in, f"kernelChannels = {p.kernelChannels}")
    out_per_group = int(p.outputChannels) // groups
    weight = _tensor(layer, "weights", (int(p.kernelChannels), out_per_group) + kernel,
                     channel_axis_shape=(int(p.kernelChannels), out_per_group))
    full = F.conv_transpose2d(x, weight, None, stride, 0, 0, groups, dilation)
    effective = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    h_in, w_in = x.shape[2], x.shape[3]
    if len(p.outputShape):
        top, _, left, _ = border_amounts(p.valid) if p.WhichOneof("ConvolutionPaddingType") == "valid" else (0, 0, 0, 0)
        if p.WhichOneof("ConvolutionPaddingType") == "same":
            top, _, left, _ = same_pads((h_in, w_in), effective, stride, p.same.asymmetryMode == 1)
        out_h, out_w = int(p.outputShape[0]), int(p.outputShape[1])
    elif p.WhichOneof("ConvolutionPaddingType") == "same":
        out_h, out_w = h_in * stride[0], w_in * stride[1]
        extra_h, extra_w = full.shape[2] - out_h, full.shape[3] - out_w
        heavy_top = p.same.asymmetryMode == 1
        top = (extra_h - extra_h // 2) if heavy_top else extra_h // 2
        left = (extra_w - extra_w // 2) if heavy_top else extra_w // 2
    else:
        top, bottom, left, right = border_amounts(p.valid)
        out_h, out_w = full.shape[2] - top - bottom, full.shape[3] - left - right
    grow_h = max(0, top + out_h - full.shape[2])
    grow_w = max(0, left + out_w - full.shape[3])
    if grow_h or grow_w:
        full = F.pad(full, (0, grow_w, 0, grow_h))
    y = full[:, :, top:top + out_h, left:left + out_w]
    if p.hasBias:
        y = y + _tensor(layer, "bias", (int(p.outputChannels),)).reshape(1, -1, 1, 1)
    return y


@NN_LAYERS.register("convolution")
def convolution(layer: Layer, x: np.ndarray, *weight_input: np.ndarray) -> np.ndarray:
    """2-D (de)convolution over the last three axes [C, H, W]; leading axes are batch.

    A second input, if present, holds the weights [C_out, C_in / groups, kH, kW].
    """
    layer.need_rank(x, 3)
    batched, batch = as_batched_chw(np.asarray(x, dtype=np.float32))
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(batched))
        if layer.params.isDeconvolution:
            y = _deconvolve(layer, t)
        else:
            dynamic = torch.from_numpy(np.ascontiguousarray(weight_input[0], dtype=np.float32)) if weight_input else None
            y = _convolve(layer, t, dynamic)
    return from_batched_chw(y.contiguous().numpy(), batch)
