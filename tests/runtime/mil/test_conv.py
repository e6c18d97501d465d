"""conv, conv_transpose, linear, matmul, einsum against torch oracles."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelbuild.runtime.mil.kernel import MIL_OPS, OpContext
from modelbuild.runtime.mil.opsets import IOS15
from modelbuild.runtime.mil.testing import mb, run_mil
from modelbuild.runtime.registry import ShapeMismatchError


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(got: np.ndarray, expected: torch.Tensor, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=atol)


@pytest.mark.ops("conv")
@pytest.mark.parametrize(
    "size, stride, pad_type, expected_pad",
    [
        (8, 1, "valid", (0, 0, 0, 0)),
        (8, 1, "same", (1, 1, 1, 1)),
        (7, 2, "same", (1, 1, 1, 1)),        # total 2: split evenly
        (8, 2, "same", (0, 1, 0, 1)),        # total 1: the extra row/column goes after
        (8, 2, "same_lower", (1, 0, 1, 0)),  # ... or before
    ],
)
def test_conv_pad_types(size, stride, pad_type, expected_pad, rng):
    x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    got = run_mil(lambda x: mb.conv(x=x, weight=w, bias=b, strides=[stride, stride], pad_type=pad_type), {"x": x})
    top, bottom, left, right = expected_pad
    expected = F.conv2d(F.pad(_t(x), (left, right, top, bottom)), _t(w), _t(b), stride=stride)
    _close(got, expected)


@pytest.mark.ops("conv")
def test_conv_custom_pad_dilation_groups_and_depthwise(rng):
    x = rng.standard_normal((2, 6, 9, 11)).astype(np.float32)
    grouped_w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    depthwise_w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    grouped, depthwise = run_mil(
        lambda x: (
            mb.conv(x=x, weight=grouped_w, pad_type="custom", pad=[2, 1, 0, 3], dilations=[2, 1], groups=2,
                    strides=[1, 2]),
            mb.conv(x=x, weight=depthwise_w, pad_type="custom", pad=[1, 1, 1, 1], groups=6),
        ),
        {"x": x},
    )
    _close(grouped, F.conv2d(F.pad(_t(x), (0, 3, 2, 1)), _t(grouped_w), dilation=(2, 1), groups=2, stride=(1, 2)))
    _close(depthwise, F.conv2d(_t(x), _t(depthwise_w), padding=1, groups=6))


@pytest.mark.ops("conv")
def test_conv_1d_and_3d(rng):
    x1 = rng.standard_normal((1, 2, 10)).astype(np.float32)
    w1 = rng.standard_normal((3, 2, 4)).astype(np.float32)
    x3 = rng.standard_normal((1, 2, 4, 5, 6)).astype(np.float32)
    w3 = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    got1, got3 = run_mil(
        lambda a, b: (mb.conv(x=a, weight=w1, strides=[3]), mb.conv(x=b, weight=w3, pad_type="same")),
        {"a": x1, "b": x3},
    )
    _close(got1, F.conv1d(_t(x1), _t(w1), stride=3))
    _close(got3, F.conv3d(_t(x3), _t(w3), padding=1))


@pytest.mark.ops("conv")
def test_conv_fp16(rng):
    x = rng.standard_normal((1, 8, 10, 10)).astype(np.float32)
    w = (rng.standard_normal((8, 8, 3, 3)) / 8).astype(np.float32)
    got = run_mil(lambda x: mb.conv(x=x, weight=w, pad_type="same"), {"x": x}, fp16=True)
    expected = F.conv2d(_t(x).half().float(), _t(w).half().float(), padding=1)
    np.testing.assert_allclose(got, expected.numpy(), atol=5e-3)  # inputs, weights and result in fp16


def _context(op_type: str) -> OpContext:
    from coremltools.proto import MIL_pb2

    from modelbuild.runtime.mil.values import TensorType

    return OpContext(op_type, ["y"], [TensorType(MIL_pb2.DataType.FLOAT32, None)])


@pytest.mark.ops("conv")
def test_conv_channel_mismatch_is_a_shape_error():
    x = np.zeros((1, 3, 8, 8), np.float32)
    w = np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ShapeMismatchError, match=r"conv op 'y'.*3 channels.*x \(1, 3, 8, 8\), weight \(4, 2, 3, 3\)"):
        MIL_OPS.get("conv", opset=IOS15)(_context("conv"), x=x, weight=w)


@pytest.mark.ops("conv_transpose")
@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 0), (2, 1), (3, 2)])
def test_conv_transpose_valid_and_custom(stride, pad, rng):
    x = rng.standard_normal((1, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    pad_type = "custom" if pad else "valid"
    got = run_mil(
        lambda x: mb.conv_transpose(x=x, weight=w, bias=b, strides=[stride, stride], pad_type=pad_type,
                                    pad=[pad] * 4),
        {"x": x},
    )
    _close(got, F.conv_transpose2d(_t(x), _t(w), _t(b), stride=stride, padding=pad))


@pytest.mark.ops("conv_transpose")
def test_conv_transpose_groups_dilation_output_shape_and_same(rng):
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)  # groups=2: 4 output channels
    grouped, shaped, same = run_mil(
        lambda x: (
            mb.conv_transpose(x=x, weight=w, groups=2, dilations=[2, 1]),
            mb.conv_transpose(x=x, weight=w, groups=2, strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1],
                              output_shape=[1, 4, 10, 10]),
            mb.conv_transpose(x=x, weight=w, groups=2, strides=[2, 2], pad_type="same"),
        ),
        {"x": x},
    )
    _close(grouped, F.conv_transpose2d(_t(x), _t(w), groups=2, dilation=(2, 1)))
    _close(shaped, F.conv_transpose2d(_t(x), _t(w), groups=2, stride=2, padding=1, output_padding=1))
    # same: output = input * stride; the full 11x11 result loses its last row and column (TensorFlow's rule)
    full = F.conv_transpose2d(_t(x), _t(w), groups=2, stride=2)
    _close(same, full[:, :, :10, :10])


@pytest.mark.ops("linear")
def test_linear_with_and_without_bias(rng):
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    w = rng.standard_normal((4, 5)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    with_bias, without = run_mil(lambda x: (mb.linear(x=x, weight=w, bias=b), mb.linear(x=x, weight=w)), {"x": x})
    _close(with_bias, F.linear(_t(x), _t(w), _t(b)))
    _close(without, F.linear(_t(x), _t(w)))


@pytest.mark.ops("matmul")
@pytest.mark.parametrize(
    "x_shape, y_shape, tx, ty",
    [((2, 3, 4), (4, 5), False, False), ((3, 4), (2, 5, 4), False, True), ((4,), (4, 2), False, False),
     ((2, 1, 4, 3), (3, 4, 5), True, False)],
)
def test_matmul_broadcast_transpose_rank1(x_shape, y_shape, tx, ty, rng):
    x = rng.standard_normal(x_shape).astype(np.float32)
    y = rng.standard_normal(y_shape).astype(np.float32)
    got = run_mil(lambda x, y: mb.matmul(x=x, y=y, transpose_x=tx, transpose_y=ty), {"x": x, "y": y})
    tx_, ty_ = _t(x), _t(y)
    if tx:
        tx_ = tx_.transpose(-1, -2)
    if ty:
        ty_ = ty_.transpose(-1, -2)
    _close(got, torch.matmul(tx_, ty_))


@pytest.mark.ops("matmul")
def test_matmul_inner_mismatch_is_a_shape_error():
    with pytest.raises(ShapeMismatchError, match=r"matmul op 'y'.*x \(2, 3\), y \(4, 5\)"):
        MIL_OPS.get("matmul", opset=IOS15)(_context("matmul"), x=np.zeros((2, 3)), y=np.zeros((4, 5)))


@pytest.mark.ops("einsum")
def test_einsum(rng):
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)  # n c h w
    b = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)  # n w h u
    got = run_mil(lambda a, b: mb.einsum(values=(a, b), equation="nchw,nwhu->nchu"), {"a": a, "b": b})
    _close(got, torch.einsum("nchw,nwhu->nchu", _t(a), _t(b)))


@pytest.mark.ops("scaled_dot_product_attention")
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_scaled_dot_product_attention(mask_kind, rng):
    q = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    v = rng.standard_normal((2, 3, 7, 4)).astype(np.float32)
    feeds = {"q": q, "k": k, "v": v}
    if mask_kind == "bool":
        feeds["m"] = rng.random((5, 7)) > 0.3
        feeds["m"][:, 0] = True  # every row attends somewhere
    elif mask_kind == "float":
        feeds["m"] = rng.standard_normal((5, 7)).astype(np.float32)
    got = run_mil(lambda **f: mb.scaled_dot_product_attention(
        query=f["q"], key=f["k"], value=f["v"], attn_mask=f.get("m")), feeds, target="iOS18")
    mask = _t(feeds["m"]) if mask_kind else None
    _close(got, F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=mask))
