"""onnx::gather_bool_as_int32: a Gather on bool data, which onnx2coreml 1.1.0 cannot lower, computed in int32."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnx2coreml
import pytest
import torch
from surgery.helpers import onnx_op_types, run_onnx
from torch import nn

from modelbuild.surgery import SurgeryError, apply_steps

SHAPE = (4, 6)


class GatherFromMask(nn.Module):
    """mask = x > 0 (bool); pick rows 2, 0, 3 of it (a Gather on bool data); return them as floats."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x > 0
        return torch.index_select(mask, 0, torch.tensor([2, 0, 3])).float() * x[:3]


def _export(model: nn.Module) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(SHAPE),), buffer, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


@pytest.fixture(scope="module")
def bool_gather_model() -> onnx.ModelProto:
    model = _export(GatherFromMask().eval())
    assert "Gather" in onnx_op_types(model)
    return model


def test_gather_on_bool_data_is_computed_in_int32(apply_step, bool_gather_model):
    repaired = apply_step(bool_gather_model, {"step": "onnx::gather_bool_as_int32"})
    ops = onnx_op_types(repaired)
    gather = ops.index("Gather")
    assert ops[gather - 1:gather + 2] == ["Cast", "Gather", "Cast"]
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    expected = GatherFromMask()(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(run_onnx(repaired, {"x": x})["y"], expected)
    np.testing.assert_array_equal(run_onnx(bool_gather_model, {"x": x})["y"], expected)


def test_onnx2coreml_refuses_the_bool_gather_and_lowers_the_repaired_one(bool_gather_model):
    with pytest.raises(onnx2coreml.ConversionError, match=r"\(op Gather\).*but got tensor\[4,6,bool\]"):
        onnx2coreml.Converter().to_mil(bool_gather_model)
    repaired = apply_steps(bool_gather_model, [{"step": "onnx::gather_bool_as_int32"}])
    assert onnx2coreml.Converter().to_mil(repaired) is not None


def test_a_model_without_bool_gathers_is_refused_with_the_reason():
    model = _export(nn.Linear(6, 2).eval())
    with pytest.raises(SurgeryError, match="found no Gather whose data input is bool"):
        apply_steps(model, [{"step": "onnx::gather_bool_as_int32"}])
