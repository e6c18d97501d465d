"""The write-ups' recipes built with onnx.exporter dynamo and every torch variant on capture export.

Copies of recipes/ffdnet.yaml, ffdnet_flexible.yaml and resnet50.yaml with those two switches,
built for real: every artifact validates against PyTorch (at every declared shape for the
flexible one), the ONNX file is at the recipe's opset, and the manifest records the paths used.
"""
from __future__ import annotations

import json

import onnx
import pytest
from projects import build_shipped_recipe

pytestmark = pytest.mark.slow


def new_paths(data: dict) -> None:
    """Switch a recipe to the dynamo ONNX exporter and the torch.export capture."""
    data["onnx"]["exporter"] = "dynamo"
    for variant in data["coreml"].values():
        if variant.get("frontend") == "torch":  # compressed variants take theirs from_variant
            variant["capture"] = "export"


def _report_and_manifest(artifacts):
    report = json.loads((artifacts / "report.json").read_text())
    manifest = json.loads((artifacts / "manifest.json").read_text())["artifacts"]
    return report, manifest


def _check_paths_recorded(manifest: dict, onnx_file, torch_variants: int) -> None:
    """The manifest's fingerprints say which exporter and captures built the artifacts."""
    assert manifest["onnx"]["fingerprint"]["onnx"]["exporter"] == "dynamo"
    captures = [entry["fingerprint"][name]["capture"] for name, entry in manifest.items()
                if name.startswith("coreml.") and entry.get("frontend") == "torch"]
    assert captures == ["export"] * torch_variants
    assert [o.version for o in onnx.load(str(onnx_file)).opset_import if o.domain == ""] == [17]


def test_ffdnet(tmp_path_factory):
    artifacts = build_shipped_recipe(tmp_path_factory, "ffdnet", new_paths)
    report, manifest = _report_and_manifest(artifacts)
    _check_paths_recorded(manifest, artifacts / "FFDNet.onnx", torch_variants=0)
    assert report["passed"]
    assert {c["artifact"] for c in report["comparisons"]} == {"onnx", "multiarray", "image", "multiarray_int8",
                                                              "program_palette6"}
    assert all(c["passed"] for c in report["comparisons"])


def test_ffdnet_flexible(tmp_path_factory):
    artifacts = build_shipped_recipe(tmp_path_factory, "ffdnet_flexible", new_paths)
    report, manifest = _report_and_manifest(artifacts)
    _check_paths_recorded(manifest, artifacts / "FFDNet_flexible.onnx", torch_variants=4)
    assert report["passed"]
    for variant in ("multiarray", "image", "program", "image_program"):
        mine = [c for c in report["comparisons"] if c["artifact"] == variant]
        assert len(mine) == 6 and all(c["passed"] for c in mine)  # 5 sizes, odd ones included, and one refused
    dims = onnx.load(str(artifacts / "FFDNet_flexible.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [1, 3, "my_input_2", "my_input_3"]


def test_resnet50(tmp_path_factory):
    artifacts = build_shipped_recipe(tmp_path_factory, "resnet50", new_paths)
    report, manifest = _report_and_manifest(artifacts)
    _check_paths_recorded(manifest, artifacts / "ResNet50.onnx", torch_variants=7)  # 3 compressed from torch_program
    assert report["passed"]
    fp32 = [c for c in report["comparisons"] if "fp16" not in c["artifact"] and not c["artifact"].startswith(
        ("program_int8", "program_palette"))]
    assert len(fp32) == 5 * 4 and all(c["figures"]["top1"] == 1.0 for c in fp32)
    agreement = json.loads((artifacts / "agreement.json").read_text())
    assert agreement["agreement"][0][:6] == [1.0] * 6  # every fp32 route picks PyTorch's class on every photo
