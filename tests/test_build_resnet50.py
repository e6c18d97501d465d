"""recipes/resnet50.yaml built for real: six Core ML classifier variants validate and agree with PyTorch."""
from __future__ import annotations

import json

import pytest
from projects import build_shipped_recipe

from modelbuild.inspection import describe_file

pytestmark = pytest.mark.slow
VARIANTS = ["onnx_nn", "torch_nn", "onnx_program", "torch_program", "torch_nn_fp16", "torch_program_fp16"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_shipped_recipe(tmp_path_factory, "resnet50")


def test_fp32_variants_agree_on_every_top1_and_fp16_agreement_is_reported(built):
    report = json.loads((built / "report.json").read_text())
    assert report["passed"]
    for variant in VARIANTS:
        mine = [c for c in report["comparisons"] if c["artifact"] == variant]
        assert len(mine) == 4  # one per sample photo
        assert all("top1" in c["figures"] for c in mine)
        if "fp16" not in variant:
            assert all(c["figures"]["top1"] == 1.0 for c in mine), variant


def test_agreement_matrix_of_the_writeup(built):
    data = json.loads((built / "agreement.json").read_text())
    assert data["models"][:4] == ["torch", "torch->onnx", "onnx->coreml", "torch->coreml"]
    assert len(data["agreement"]) == 8 and len(data["samples"]) == 4
    torch_row = data["agreement"][0]
    assert torch_row[:6] == [1.0] * 6  # every fp32 route picks PyTorch's class on every photo


def test_inspect_shows_the_classifier_outputs(built):
    text = describe_file(built / "resnet50_onnx_nn.mlmodel")
    assert "classLabel " in text and "string" in text
    assert "classLabel_probs" in text and "dictionary" in text
    assert "classifier: 1000 string labels (tench, goldfish, great white shark" in text
