"""Fractional nearest resizing in a NeuralNetwork: gathers, not coremltools' silent bilinear fallback."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelbuild import runtime
from modelbuild.coreml import FeatureSpec, convert

SHAPE = (1, 2, 8, 8)


class Nearest(nn.Module):
    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode="nearest")


def _layers(mlmodel) -> list[str]:
    return [layer.WhichOneof("layer") for layer in mlmodel.get_spec().neuralNetwork.layers]


@pytest.mark.parametrize("frontend", ["torch", "onnx"])
@pytest.mark.parametrize("size,target", [((12, 12), "iOS14"), ((13, 11), "iOS13"), ((16, 16), "iOS13")])
def test_nearest_resize_matches_torch_exactly(tmp_path, frontend, size, target):
    model = Nearest(size).eval()
    onnx_path = tmp_path / "nearest.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(SHAPE),), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    log = tmp_path / "nearest.log"
    mlmodel = convert(frontend=frontend, torch_model=model, onnx_path=onnx_path, inputs=[FeatureSpec("x", SHAPE)],
                      outputs=[FeatureSpec("y", (*SHAPE[:2], *size))], format="neuralnetwork",
                      minimum_deployment_target=target, log_path=log)
    integer_factor = size == (16, 16)
    assert ("upsample" in _layers(mlmodel)) == integer_factor
    assert ("as gathers: coremltools' NeuralNetwork backend would make it a bilinear upsample" in log.read_text()) \
        != integer_factor
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(runtime.load(mlmodel, backend="reference").predict({"x": x})["y"], expected)
