"""3-D layers on [B, C, D, H, W]: convolution3d, pooling3d, globalPooling3d (torch kernels),
and slidingWindows.

Padding types: CUSTOM (explicit front/back, top/bottom, left/right amounts), VALID
(none) and SAME (output = ceil(input / stride), odd pixel at the end).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32, normalize_axis

CUSTOM, VALID, SAME = 0, 1, 2


def _pads_3d(layer: Layer, spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """[front, back, top, bottom, left, right]."""
    p = layer.params
    if p.paddingType == CUSTOM:
        return [int(p.customPaddingFront), int(p.customPaddingBack), int(p.customPaddingTop),
                int(p.customPaddingBottom), int(p.customPaddingLeft), int(p.customPaddingRight)]
    if p.paddingType == VALID:
        return [0] * 6
    pads: list[int] = []
    for size, k, s in zip(spatial, kernel, stride):
        total = max(0, (-(-size // s) - 1) * s + k - size)
        pads += [total // 2, total - total // 2]
    return pads


def _torch_pad_order(pads: list[int]) -> tuple[int, ...]:
    front, back, top, bottom, left, right = pads
    return (left, right, top, bottom, front, back)


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


@NN_LAYERS.register("convolution3d")
def convolution3d(layer: Layer, x: np.ndarray) -> np.ndarray:
    """3-D (de)convolution; weights [C_out, C_in / groups, kD, kH, kW] ([C_in, C_out / groups, ...] for deconv)."""
    p = layer.params
    layer.need_rank(x, 5)
    groups = int(p.nGroups) or 1
    kernel = (int(p.kernelDepth), int(p.kernelHeight), int(p.kernelWidth))
    stride = (int(p.strideDepth) or 1, int(p.strideHeight) or 1, int(p.strideWidth) or 1)
    dilation = (int(p.dilationDepth) or 1, int(p.dilationHeight) or 1, int(p.dilationWidth) or 1)
    c_in, c_out = int(p.inputChannels), int(p.outputChannels)
    if x.shape[1] != c_in:
        raise layer.mismatch(f"input channels (input shape {list(x.shape)})", x.shape[1], f"inputChannels = {c_in}")
    if p.isDeconvolution:
        shape = (c_in, c_out // groups) + kernel
    else:
        shape = (c_out, c_in // groups) + kernel
    weight = layer.cached("torch:weights", lambda: _as_tensor(layer.weights("weights", shape)))
    bias = layer.cached("torch:bias", lambda: _as_tensor(layer.weights("bias", (c_out,)))) if p.hasBias else None
    with torch.no_grad():
        t = _as_tensor(x)
        if p.isDeconvolution:
            full = F.conv_transpose3d(t, weight, bias, stride, 0, 0, groups, dilation)
            pads = _pads_3d(layer, tuple(x.shape[2:]), kernel, stride) if p.paddingType == CUSTOM else [0] * 6
            target = [int(v) for v in p.outputShape][-3:] if len(p.outputShape) else None
            slices = []
            for axis in range(3):
                start = pads[2 * axis]
                stop = full.shape[2 + axis] - pads[2 * axis + 1]
                if target is not None:
                    stop = start + target[axis]
                slices.append(slice(start, stop))
            return full[(slice(None), slice(None), *slices)].contiguous().numpy()
        effective = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
        pads = _pads_3d(layer, tuple(x.shape[2:]), effective, stride)
        t = F.pad(t, _torch_pad_order(pads))
        return F.conv3d(t, weight, bias, stride, 0, dilation, groups).numpy()


@NN_LAYERS.register("pooling3d")
def pooling3d(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Max or average pooling over D, H, W; averages exclude padding if countExcludePadding."""
    p = layer.params
    layer.need_rank(x, 5)
    kernel = (int(p.kernelDepth), int(p.kernelHeight), int(p.kernelWidth))
    stride = (int(p.strideDepth) or 1, int(p.strideHeight) or 1, int(p.strideWidth) or 1)
    pads = _torch_pad_order(_pads_3d(layer, tuple(x.shape[2:]), kernel, stride))
    with torch.no_grad():
        t = _as_tensor(x)
        if p.type == 0:
            return F.max_pool3d(F.pad(t, pads, value=float("-inf")), kernel, stride).numpy()
        total = F.avg_pool3d(F.pad(t, pads), kernel, stride, divisor_override=1)
        mask = torch.ones((1, 1) + tuple(x.shape[2:]))
        mask = F.pad(mask, pads) if p.countExcludePadding else F.pad(mask, pads, value=1.0)
        count = F.avg_pool3d(mask, kernel, stride, divisor_override=1)
        return (total / count.clamp(min=1.0)).numpy()


@NN_LAYERS.register("globalPooling3d")
def global_pooling3d(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Max or average over D, H, W (kept as size-1 axes)."""
    layer.need_rank(x, 5)
    axes = (-3, -2, -1)
    x = f32(x)
    return x.max(axis=axes, keepdims=True) if layer.params.type == 0 else f32(x.mean(axis=axes, keepdims=True))


@NN_LAYERS.register("slidingWindows")
def sliding_windows(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Windows of windowSize every `step` along `axis`: [..., L, ...] -> [..., M, windowSize, ...]."""
    p = layer.params
    axis = normalize_axis(layer, int(p.axis), x.ndim)
    size, step = int(p.windowSize), int(p.step) or 1
    if size > x.shape[axis]:
        raise layer.mismatch(f"axis {axis} length", x.shape[axis], f">= windowSize {size}")
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)  # window axis appended last
    windows = np.take(windows, np.arange(0, windows.shape[axis], step), axis=axis)
    return np.ascontiguousarray(np.moveaxis(windows, -1, axis + 1))
