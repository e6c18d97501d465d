"""A failed onnxruntime comparison says when PyTorch's own float32 result is far from its float64 one."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from modelbuild.stages.onnx_stage import _conditioning_hint, _run_torch


class Scaled(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x * self.factor)


def _hint(factor: float) -> tuple[str, nn.Module]:
    model = Scaled(factor).eval()
    feeds = {"x": np.random.default_rng(0).uniform(0, 1, (1, 64)).astype(np.float32)}
    return _conditioning_hint(model, feeds, _run_torch(model, feeds)), model


def test_an_ill_conditioned_reference_is_named():
    hint, model = _hint(1e6)  # x * 1e6 rounds by ~0.03 in float32: sin() of it moves by as much
    assert hint.startswith(" (PyTorch itself, float32 against float64, differs by ")
    assert "ill-conditioned" in hint
    assert model.factor.dtype == torch.float32  # put back


def test_a_well_conditioned_reference_gets_no_hint():
    assert _hint(1.0)[0] == ""
