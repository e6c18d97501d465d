"""The `pooling` layer: max, average and L2 pooling, global or windowed.

Padding follows NeuralNetwork.proto: `valid` (explicit amounts), `same`, and
`includeLastPixel` (Caffe's ceil mode: symmetric padding, and the last window
always covers the last pixel). Average pooling divides by the window area
clipped to the padded input, or by the count of real pixels when
`avgPoolExcludePadding` is set.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, as_batched_chw, from_batched_chw
from modelbuild.runtime.nn.padding import border_amounts, pair, same_pads

MAX, AVERAGE, L2 = 0, 1, 2


def _global(kind: int, x: np.ndarray) -> np.ndarray:
    if kind == MAX:
        return x.max(axis=(-2, -1), keepdims=True)
    if kind == AVERAGE:
        return x.mean(axis=(-2, -1), keepdims=True, dtype=np.float32)
    return np.sqrt(np.square(x).sum(axis=(-2, -1), keepdims=True))


def _include_last_pixel_geometry(size: int, pad: int, kernel: int, stride: int) -> tuple[int, int]:
    """(output size, extra end padding) of ValidCompletePadding along one axis."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    extra = max(0, (out - 1) * stride + kernel - (size + 2 * pad))
    return out, extra


@NN_LAYERS.register("pooling")
def pooling(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Pool over H, W of [..., C, H, W]."""
    p = layer.params
    layer.need_rank(x, 3)
    x = np.asarray(x, dtype=np.float32)
    if p.globalPooling:
        return _global(p.type, x)
    batched, batch = as_batched_chw(x)
    h, w = batched.shape[2], batched.shape[3]
    kernel, stride = pair(p.kernelSize, 3), pair(p.stride, 1)
    padding = p.WhichOneof("PoolingPaddingType")
    extra_h = extra_w = 0
    if padding == "same":
        top, bottom, left, right = same_pads((h, w), kernel, stride, p.same.asymmetryMode == 1)
    elif padding == "includeLastPixel":
        ph, pw = pair(p.includeLastPixel.paddingAmounts, 0)
        top = bottom = ph
        left = right = pw
        _, extra_h = _include_last_pixel_geometry(h, ph, kernel[0], stride[0])
        _, extra_w = _include_last_pixel_geometry(w, pw, kernel[1], stride[1])
    else:
        top, bottom, left, right = border_amounts(p.valid)
    if h + top + bottom < kernel[0] or w + left + right < kernel[1]:
        raise layer.mismatch("padded input H, W", [h + top + bottom, w + left + right], f">= kernel {list(kernel)}")
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(batched))
        full_pad = (left, right + extra_w, top, bottom + extra_h)
        if p.type == MAX:
            padded = F.pad(t, full_pad, value=float("-inf"))
            y = F.max_pool2d(padded, kernel, stride)
        else:
            source = t * t if p.type == L2 else t
            padded = F.pad(source, full_pad)
            total = F.avg_pool2d(padded, kernel, stride, divisor_override=1)
            if p.type == L2:
                y = torch.sqrt(total)
            else:
                mask = torch.ones((1, 1, h, w), dtype=torch.float32)
                if not p.avgPoolExcludePadding:
                    mask = F.pad(mask, (left, right, top, bottom), value=1.0)
                    mask = F.pad(mask, (0, extra_w, 0, extra_h))
                else:
                    mask = F.pad(mask, full_pad)
                count = F.avg_pool2d(mask, kernel, stride, divisor_override=1)
                y = total / count.clamp(min=1.0)
    return from_batched_chw(y.contiguous().numpy(), batch)
