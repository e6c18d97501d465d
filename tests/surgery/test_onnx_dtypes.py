"""onnx::bool_as_int32: ops on bool tensors that onnx2coreml 1.1.0 cannot lower, computed in int32."""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
import onnx2coreml
import pytest
import torch
from surgery.helpers import export_onnx, onnx_op_types, run_onnx
from torch import nn

from modelbuild.surgery import SurgeryError, apply_steps

SHAPE = (1, 2, 4, 6)
ROW = torch.zeros(1, 2, 4, 1, dtype=torch.int64)


class OnMask(nn.Module):
    """mask = x > 0 (bool), then `operation(mask, x)` (an op on bool data), returned as floats."""

    def __init__(self, operation: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.operation = operation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.operation(x > 0, x).float()


# the ONNX op each model puts on bool data, and the model
CASES = {
    "Gather": lambda mask, x: torch.index_select(mask, 2, torch.tensor([2, 0, 3])),
    "GatherElements": lambda mask, x: torch.gather(mask, 3, ROW + 2),
    "ScatterElements": lambda mask, x: mask.scatter(3, ROW, x[..., :1] < 0),
    "Equal": lambda mask, x: mask == (x > 0.5),
    "Max": lambda mask, x: torch.maximum(mask, x > 0.5),
    "ReduceMax": lambda mask, x: mask.amax(-1),
}


@pytest.mark.parametrize("op_type", CASES)
def test_bool_op_is_computed_in_int32_and_onnx2coreml_lowers_it(apply_step, op_type):
    torch_model = OnMask(CASES[op_type]).eval()
    model = export_onnx(torch_model, shape=SHAPE)
    assert op_type in onnx_op_types(model)
    with pytest.raises(onnx2coreml.ConversionError, match=rf"\(op {op_type}\).*bool\]"):
        onnx2coreml.Converter().to_mil(model)

    repaired = apply_step(model, {"step": "onnx::bool_as_int32"})
    ops = onnx_op_types(repaired)
    assert ops[ops.index(op_type) - 1] == "Cast"
    casts_to = [next(a.i for a in node.attribute if a.name == "to") for node in repaired.graph.node
                if node.op_type == "Cast" and node not in model.graph.node]
    assert onnx.TensorProto.INT32 in casts_to
    assert (onnx.TensorProto.BOOL in casts_to) == (op_type != "Equal")  # Equal's result is bool already
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    expected = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(run_onnx(repaired, {"x": x})["y"], expected)
    assert onnx2coreml.Converter().to_mil(repaired) is not None


def test_a_model_without_bool_data_is_refused_with_the_reason():
    model = export_onnx(nn.Linear(6, 2).eval(), shape=SHAPE)
    with pytest.raises(SurgeryError, match="found no Gather, GatherElements, .* node with a bool data input"):
        apply_steps(model, [{"step": "onnx::bool_as_int32"}])
