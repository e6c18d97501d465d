"""modelbuild's extra torch-op converters: numbers through modelbuild.runtime, and coremltools' registry restored."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelbuild import runtime
from modelbuild.coreml import FeatureSpec, Range, convert
from modelbuild.coreml.torch_ops import extra_torch_ops


def _registry() -> dict:
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY

    return _TORCH_OPS_REGISTRY.name_to_func_mapping


def _mil_ops(mlmodel) -> list[str]:
    spec = mlmodel.get_spec()
    if spec.WhichOneof("Type") == "neuralNetwork":
        return [layer.WhichOneof("layer") for layer in spec.neuralNetwork.layers]
    function = spec.mlProgram.functions["main"]
    return [op.type for op in function.block_specializations[function.opset].operations]


def _compare(mlmodel, model: nn.Module, shapes: list[tuple[int, ...]], atol: float = 1e-5) -> None:
    for seed, shape in enumerate(shapes):
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = runtime.load(mlmodel, backend="reference").predict({"x": x})["y"]
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=f"at shape {shape}")


def test_registrations_last_only_for_the_block():
    before = dict(_registry())
    with extra_torch_ops():
        assert "new_ones" in _registry()
        assert _registry()["upsample_bilinear2d"] is not before["upsample_bilinear2d"]
    assert _registry() == before


class NewOnes(nn.Module):
    """new_ones of a constant size, of the input's (flexible) size, and a bool one combined with a mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        everywhere = x.new_ones((), dtype=torch.bool) & (x > 0)
        return x * x.new_ones(x.shape) + everywhere.float() + x.new_ones((x.shape[-1],)) * 2


@pytest.mark.parametrize("fmt,target", [("mlprogram", "iOS15"), ("neuralnetwork", "iOS14")])
def test_new_ones(fmt, target):
    shape = (1, 3, 8, 8)
    flexible = Range((None, None, (4, 16, 8), (4, 16, 8)))
    mlmodel = convert(frontend="torch", torch_model=NewOnes().eval(), outputs=[FeatureSpec("y", shape)],
                      inputs=[FeatureSpec("x", shape, flexible=flexible)], format=fmt,
                      minimum_deployment_target=target)
    _compare(mlmodel, NewOnes().eval(), [shape, (1, 3, 5, 13)], atol=0)


class UpsampleToInputSize(nn.Module):
    """Halve the size with a strided conv, then interpolate back to the input's size (a size from another tensor)."""

    def __init__(self, mode: str, align_corners: bool | None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, stride=2, padding=1)
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), size=x.shape[-2:], mode=self.mode, align_corners=self.align_corners) + x


@pytest.mark.parametrize("mode,align_corners", [("bilinear", False), ("bilinear", True), ("nearest", None)])
@pytest.mark.parametrize("fmt,target", [("mlprogram", "iOS17"), ("mlprogram", "iOS15"), ("neuralnetwork", "iOS13")])
def test_upsample_to_a_size_computed_at_run_time(mode, align_corners, fmt, target):
    model = UpsampleToInputSize(mode, align_corners).eval()
    shape = (1, 3, 32, 32)
    mlmodel = convert(frontend="torch", torch_model=model, outputs=[FeatureSpec("y", shape)], format=fmt,
                      inputs=[FeatureSpec("x", shape, flexible=Range((None, None, (16, 64, 32), (16, 64, 32))))],
                      minimum_deployment_target=target)
    ops = _mil_ops(mlmodel)
    assert ("resize" in ops) == (mode == "bilinear" and target == "iOS17")  # iOS17's resize takes a size tensor
    index_arithmetic = "range_1d" in ops or "rangeDynamic" in ops  # the positions the gathers read
    assert index_arithmetic == (mode == "nearest" or target != "iOS17")
    _compare(mlmodel, model, [shape, (1, 3, 21, 45), (1, 3, 64, 17)])


def test_an_upsample_coremltools_maps_keeps_its_lowering():
    """size = 2 x the input's own size: coremltools' pass finds the constant scale, modelbuild leaves it alone."""
    model = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False).eval()
    mlmodel = convert(frontend="torch", torch_model=model, outputs=[FeatureSpec("y", (1, 3, 16, 16))],
                      inputs=[FeatureSpec("x", (1, 3, 8, 8), flexible=Range((None, None, (4, 16, 8), (4, 16, 8))))],
                      format="mlprogram", minimum_deployment_target="iOS17")
    assert "upsample_bilinear" in _mil_ops(mlmodel) and "resize" not in _mil_ops(mlmodel)


class SegmentationOut(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["iOS17", "iOS15"])
def test_lraspp_with_flexible_image_sizes(target):
    """torchvision's LR-ASPP upsamples to the image's size: with a flexible range it converts and matches at 2 sizes."""
    import torchvision

    torch.manual_seed(0)
    model = SegmentationOut(torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None)).eval()
    shape = (1, 3, 224, 224)
    mlmodel = convert(frontend="torch", torch_model=model, outputs=[FeatureSpec("y", (1, 21, 224, 224))],
                      inputs=[FeatureSpec("x", shape, flexible=Range((None, None, (160, 320, 224), (160, 320, 224))))],
                      format="mlprogram", minimum_deployment_target=target)
    _compare(mlmodel, model, [(1, 3, 160, 288), (1, 3, 320, 200)], atol=1e-4)


@pytest.mark.slow
def test_bert_with_an_attention_mask_input_converts_with_new_ones():
    """transformers 5 builds BERT's attention mask with new_ones(dtype=bool): converted by modelbuild."""
    from modelbuild.zoo.transformers import from_config

    torch.manual_seed(0)
    bert = from_config("bert", "AutoModelForSequenceClassification", {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
        "vocab_size": 1000})

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits

    model = Logits().eval()
    inputs = [FeatureSpec("input_ids", (1, 16), dtype="int64"), FeatureSpec("attention_mask", (1, 16), dtype="int64")]
    mlmodel = convert(frontend="torch", torch_model=model, inputs=inputs, outputs=[FeatureSpec("y", (1, 2))],
                      format="mlprogram", minimum_deployment_target="iOS15")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1000, (1, 16))
    mask = np.ones((1, 16), np.int64)
    mask[0, 12:] = 0  # padding: the mask matters
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    got = runtime.load(mlmodel, backend="reference").predict(
        {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int32)})["y"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
