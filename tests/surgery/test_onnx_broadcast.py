"""onnx::broadcast_where_branches: a Where whose condition alone has the result's shape, typed right by onnx2coreml."""
from __future__ import annotations


import numpy as np
import onnx
import onnx2coreml
import pytest
import torch
from surgery.helpers import export_onnx, run_onnx
from torch import nn

from modelbuild.surgery import SurgeryError, apply_steps

SHAPE = (1, 1, 4, 4)


class ScalarWhere(nn.Module):
    """An additive attention mask: 0 where x > 0, a large negative number elsewhere (two scalar branches)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, 0.0, -1e9) + x


class FullWhere(nn.Module):
    """|x| as a Where whose branches have the condition's shape: nothing to broadcast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, -x)


def _select_shapes(model: onnx.ModelProto) -> list[tuple]:
    program = onnx2coreml.Converter().to_mil(model)
    return [tuple(op.outputs[0].shape) for op in program.functions["main"].operations if op.op_type == "select"]


def test_where_branches_take_the_result_shape(apply_step):
    model = export_onnx(ScalarWhere().eval(), shape=SHAPE)
    assert _select_shapes(model) == [()]  # coremltools 9 types select from its value inputs only
    repaired = apply_step(model, {"step": "onnx::broadcast_where_branches"})
    assert _select_shapes(repaired) == [SHAPE]
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    np.testing.assert_array_equal(run_onnx(repaired, {"x": x})["y"], run_onnx(model, {"x": x})["y"])


def test_a_where_whose_values_have_the_full_shape_is_refused_with_the_reason():
    model = export_onnx(FullWhere().eval(), shape=SHAPE)
    with pytest.raises(SurgeryError, match="found no Where whose condition has a larger"):
        apply_steps(model, [{"step": "onnx::broadcast_where_branches"}])
