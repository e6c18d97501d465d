"""modelbuild's extra ONNX symbolics: onnxruntime computes what PyTorch computes; registrations end with the block."""
from __future__ import annotations

import io

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from modelbuild.stages.onnx_symbolics import extra_symbolics


class Diffs(nn.Module):
    """diff with prepend (transformers' packed sequences), second order with append, on int64 and float."""

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = (torch.diff(positions, prepend=positions[:, :1] - 1, dim=-1) != 1).cumsum(-1)
        return packed, torch.diff(x, n=2, dim=1, append=x[:, -1:])


def _export(opset: int) -> bytes:
    buffer = io.BytesIO()
    positions = torch.zeros(2, 6, dtype=torch.int64)
    torch.onnx.export(Diffs().eval(), (positions, torch.zeros(2, 5)), buffer, opset_version=opset, dynamo=False,
                      input_names=["positions", "x"])
    return buffer.getvalue()


@pytest.mark.parametrize("opset", [13, 17])
def test_diff_matches_torch(opset):
    with extra_symbolics(opset):
        model = _export(opset)
    positions = np.array([[0, 1, 2, 0, 1, 0], [3, 4, 5, 6, 7, 8]], np.int64)
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    got = onnxruntime.InferenceSession(model).run(None, {"positions": positions, "x": x})
    expected = Diffs()(torch.from_numpy(positions), torch.from_numpy(x))
    np.testing.assert_array_equal(got[0], expected[0].numpy())
    np.testing.assert_allclose(got[1], expected[1].numpy(), rtol=0, atol=1e-6)


class FloatCumsum(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(-1)


def test_registrations_last_only_for_the_block():
    with extra_symbolics(17):
        _export(17)
    with pytest.raises(Exception):  # noqa: B017 - no aten::diff symbolic any more (torch's own error)
        _export(17)
    buffer = io.BytesIO()  # the exporter's own cumsum is back
    torch.onnx.export(FloatCumsum(), (torch.ones(2, 3),), buffer, opset_version=17, dynamo=False)
    session = onnxruntime.InferenceSession(buffer.getvalue())
    np.testing.assert_array_equal(session.run(None, {session.get_inputs()[0].name: np.ones((2, 3), np.float32)})[0],
                                  np.cumsum(np.ones((2, 3), np.float32), -1))
