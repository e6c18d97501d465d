"""MIL conv and conv_transpose (1-D to 3-D, groups, dilations, all pad types) on torch."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..kernel import MIL_OPS, OpContext
from ._torch import ints, spatial_padding, to_numpy, to_torch, torch_pad_arg

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _check_rank(op: OpContext, x: np.ndarray, weight: np.ndarray) -> int:
    spatial = x.ndim - 2
    if spatial not in _CONV or weight.ndim != x.ndim:
        raise op.shape_error(
            "x must be (N, C, *spatial) with 1 to 3 spatial dims and weight of the same rank",
            x=x, weight=weight,
        )
    return spatial


def _check_bias(op: OpContext, bias: Any, channels: int, **shapes: Any) -> None:
    if bias is not None and np.asarray(bias).size != channels:
        raise op.shape_error(f"bias must have {channels} values, one per output channel", bias=bias, **shapes)


def _bias_vector(bias: Any) -> torch.Tensor:
    return to_torch(bias).reshape(-1)


@MIL_OPS.register("conv")
def conv(
    op: OpContext, *, x: np.ndarray, weight: np.ndarray, bias: Any = None, strides: Any = None,
    pad_type: str = "valid", pad: Any = None, dilations: Any = None, groups: Any = 1,
) -> np.ndarray:
    spatial = _check_rank(op, x, weight)
    groups = int(groups)
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise op.shape_error(
            f"x has {x.shape[1]} channels but weight expects {weight.shape[1]} x {groups} groups",
            x=x, weight=weight,
        )
    _check_bias(op, bias, weight.shape[0], x=x, weight=weight)
    strides_ = ints(strides, spatial, 1)
    dilations_ = ints(dilations, spatial, 1)
    padding = spatial_padding(pad_type, pad, x.shape[2:], weight.shape[2:], strides_, dilations_)
    for size, (before, after), k, d in zip(x.shape[2:], padding, weight.shape[2:], dilations_):
        if size + before + after < (k - 1) * d + 1:
            raise op.shape_error("the (padded) input is smaller than the dilated kernel", x=x, weight=weight)
    symmetric = all(before == after for before, after in padding)
    with torch.no_grad():
        data = to_torch(x) if symmetric else F.pad(to_torch(x), torch_pad_arg(padding))
        result = _CONV[spatial](
            data, op.prepared("weight", weight, to_torch),
            None if bias is None else op.prepared("bias", bias, _bias_vector),
            stride=strides_, dilation=dilations_, groups=groups,
            padding=[before for before, _ in padding] if symmetric else 0,
        )
    return to_numpy(result)


@MIL_OPS.register("conv_transpose")
def conv_transpose(
    op: OpContext, *, x: np.ndarray, weight: np.ndarray, bias: Any = None, pad: Any = None,
    output_shape: Any = None, pad_type: str = "valid", strides: Any = None,
    dilations: Any = None, groups: Any = 1,
) -> np.ndarray:
    """The full transposed conv, cropped by the padding before each dim, then by the padding after
    it or, given output_shape (or pad_type same: input size x stride), cut to that size."""
    spatial = _check_rank(op, x, weight)
    groups = int(groups)
    if x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise op.shape_error(
            f"x has {x.shape[1]} channels but weight (C_in, C_out/groups, *K) expects {weight.shape[0]}",
            x=x, weight=weight,
        )
    out_channels = weight.shape[1] * groups
    _check_bias(op, bias, out_channels, x=x, weight=weight)
    strides_ = ints(strides, spatial, 1)
    dilations_ = ints(dilations, spatial, 1)
    with torch.no_grad():
        full = _CONV_TRANSPOSE[spatial](
            to_torch(x), op.prepared("weight", weight, to_torch), None, stride=strides_, dilation=dilations_,
            groups=groups,
        )
    result = to_numpy(full)
    full_sizes = result.shape[2:]
    if output_shape is not None:
        targets = [int(v) for v in np.asarray(output_shape).reshape(-1)[-spatial:]]
    elif pad_type == "same":
        targets = [size * s for size, s in zip(x.shape[2:], strides_)]
    else:
        targets = None
    if pad_type == "custom":
        custom = ints(pad, 2 * spatial, 0)
        crops = [(custom[2 * i], custom[2 * i + 1]) for i in range(spatial)]
    elif pad_type == "same" and targets is not None:  # TensorFlow's split: the odd one is cut after
        crops = [(max(0, f - t) // 2, 0) for f, t in zip(full_sizes, targets)]
    else:
        crops = [(0, 0)] * spatial
    if targets is not None:  # the "after" crop is whatever lies beyond the requested size
        crops = [(before, 0) for before, _ in crops]
    index = tuple(slice(b, f - a) for (b, a), f in zip(crops, full_sizes))
    result = result[(slice(None), slice(None)) + index]
    if targets is not None:  # cut or zero-extend at the end to the requested size
        extra = [(0, max(0, t - s)) for t, s in zip(targets, result.shape[2:])]
        result = np.pad(result, [(0, 0), (0, 0)] + extra)[
            (slice(None), slice(None)) + tuple(slice(0, t) for t in targets)
        ]
    if bias is not None:
        result = result + np.asarray(bias, np.float32).reshape((1, -1) + (1,) * spatial)
    return result
