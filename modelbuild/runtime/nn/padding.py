"""Spatial padding arithmetic shared by convolution, deconvolution and pooling.

Follows NeuralNetwork.proto's ValidPadding / SamePadding messages: `valid`
pads by explicit border amounts, `same` pads so that H_out = ceil(H_in / stride)
with the odd pixel at the bottom/right (BOTTOM_RIGHT_HEAVY) or top/left
(TOP_LEFT_HEAVY).
"""
from __future__ import annotations

from typing import Any

Pads = tuple[int, int, int, int]  # top, bottom, left, right


def border_amounts(valid: Any) -> Pads:
    """(top, bottom, left, right) of a ValidPadding message (zeros if unset)."""
    amounts = list(valid.paddingAmounts.borderAmounts)
    if not amounts:
        return (0, 0, 0, 0)
    h, w = amounts[0], amounts[1] if len(amounts) > 1 else amounts[0]
    return (int(h.startEdgeSize), int(h.endEdgeSize), int(w.startEdgeSize), int(w.endEdgeSize))


def same_pads(size_hw: tuple[int, int], kernel_hw: tuple[int, int], stride_hw: tuple[int, int],
              top_left_heavy: bool) -> Pads:
    """Pads for SamePadding: output = ceil(input / stride) per spatial axis."""
    pads: list[int] = []
    for size, kernel, stride in zip(size_hw, kernel_hw, stride_hw):
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + kernel - size)
        small = total // 2
        pads += [total - small, small] if top_left_heavy else [small, total - small]
    return (pads[0], pads[1], pads[2], pads[3])


def pair(values: Any, default: int) -> tuple[int, int]:
    """A [H, W] repeated field with NeuralNetwork.proto's default when unset."""
    items = [int(v) for v in values]
    if not items:
        return (default, default)
    return (items[0], items[1] if len(items) > 1 else items[0])
