"""recipes/resnet50.yaml built for real: six Core ML classifier variants validate and agree with PyTorch;
three compressed ML Programs are at most 30 % of the fp32 one's size and pass their top-1 tolerance."""
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


@pytest.mark.parametrize("variant, limit", [("program_int8", 1.0), ("program_palette6", 0.75),
                                            ("program_palette4", 0.5)])
def test_compressed_variants_are_small_and_keep_the_top1_class(built, variant, limit):
    report = json.loads((built / "report.json").read_text())
    sizes = report["artifacts"]
    share = sizes[variant]["size_bytes"] / sizes["torch_program"]["size_bytes"]
    top1 = [c["figures"]["top1"] for c in report["comparisons"] if c["artifact"] == variant and "top1" in c["figures"]]
    print(f"{variant}: {sizes[variant]['size_bytes'] / 1e6:.1f} MB ({share:.0%} of fp32), top-1 agreement "
          f"{sum(top1):.0f}/{len(top1)}")
    assert len(top1) == 4 and sum(top1) / len(top1) >= limit
    assert share <= (0.30 if variant != "program_palette4" else 0.20)
    assert sizes[variant]["compression"] in ("int8", "6-bit palette", "4-bit palette")
    text = describe_file(built / sizes[variant]["file"])
    assert "weights: " in text and ("int8 linear" in text or "-bit palette" in text)
