"""Recipes that start from an ONNX file, and surgery steps listed in recipes, built for real."""
from __future__ import annotations

import json

import onnx
import pytest
import torch
import yaml
from projects import CLASSIFIER_RECIPE, TinyClassifier, edit_recipe, make_classifier_project, run_doit

from modelbuild.inspection import describe

pytestmark = pytest.mark.slow


@pytest.fixture
def onnx_source_project(tmp_path):
    """A project whose recipe starts from a classifier exported to ONNX with generic names."""
    root = make_classifier_project(tmp_path)
    torch.manual_seed(5)
    torch.onnx.export(TinyClassifier().eval(), (torch.rand(1, 3, 32, 32),), str(root / "zoo.onnx"),
                      input_names=["input.1"], output_names=["output_0"], opset_version=17, dynamo=False)
    recipe = {key: value for key, value in CLASSIFIER_RECIPE.items() if key != "agreement"}
    recipe.update(name="zoo", model={"onnx": "zoo.onnx"},
                  coreml={"nn": CLASSIFIER_RECIPE["coreml"]["nn"],
                          "program": {**CLASSIFIER_RECIPE["coreml"]["program"], "frontend": "onnx"}},
                  agreement={"models": {"zoo onnx": "onnx", "onnx->coreml": "nn", "onnx->mlprogram": "program"}})
    recipe["onnx"] = {"surgery": [{"step": "onnx::rename_inputs", "names": {"input.1": "image"}},
                                  {"step": "onnx::rename_outputs", "names": {"output_0": "logits"}}]}
    (root / "recipes" / "clf.yaml").unlink()
    (root / "recipes" / "zoo.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return root


def test_onnx_source_recipe_builds_and_validates_against_onnxruntime(onnx_source_project, monkeypatch):
    root = onnx_source_project
    code, executed = run_doit(root, monkeypatch, "build:zoo")
    assert code == 0, (root / "doit-report.txt").read_text()
    assert executed == ["agreement:zoo", "coreml:zoo.nn", "coreml:zoo.program", "onnx:zoo", "validate:zoo"]
    graph = onnx.load(str(root / "artifacts" / "zoo" / "zoo.onnx")).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["logits"]
    report = json.loads((root / "artifacts" / "zoo" / "report.json").read_text())
    assert report["reference"].startswith("onnxruntime") and report["reference"].endswith("on zoo.onnx")
    assert report["passed"] and {c["artifact"] for c in report["comparisons"]} == {"onnx", "nn", "program"}
    assert all(c["figures"]["top1"] == 1.0 for c in report["comparisons"])


def test_source_file_is_a_dependency(onnx_source_project, monkeypatch):
    root = onnx_source_project
    assert run_doit(root, monkeypatch, "build:zoo")[0] == 0
    torch.manual_seed(6)
    torch.onnx.export(TinyClassifier().eval(), (torch.rand(1, 3, 32, 32),), str(root / "zoo.onnx"),
                      input_names=["input.1"], output_names=["output_0"], opset_version=17, dynamo=False)
    code, executed = run_doit(root, monkeypatch, "build:zoo")
    assert code == 0 and "onnx:zoo" in executed and "validate:zoo" in executed


def test_coreml_surgery_in_a_recipe_palettizes_and_validates(tmp_path, monkeypatch):
    root = make_classifier_project(tmp_path)
    edit_recipe(root, lambda d: d["coreml"]["program"].update(surgery=[{"step": "coreml::palettize", "nbits": 6,
                                                                        "weight_threshold": 0}]),
                name="clf")
    edit_recipe(root, lambda d: d["validate"].update(tolerances={"program": {"min_psnr": 25.0, "min_top1": 0.0}}),
                name="clf")
    code, _ = run_doit(root, monkeypatch, "build:clf")
    assert code == 0, (root / "doit-report.txt").read_text()
    ops = describe(root / "artifacts" / "clf" / "clf_program.mlpackage")["ops"]["counts"]
    assert ops["constexpr_lut_to_dense"] == 3  # both convolutions and the linear layer
    report = json.loads((root / "artifacts" / "clf" / "report.json").read_text())
    program = [c for c in report["comparisons"] if c["artifact"] == "program"]
    assert all(c["passed"] for c in program)
    print(f"\npalettized (6 bits) program vs torch: min PSNR "
          f"{min(c['figures']['psnr'] for c in program):.1f} dB")


def test_onnx_source_with_exact_per_channel_normalisation_in_the_image_input(onnx_source_project, monkeypatch):
    """A zoo model that expects (pixel/255 - mean) / std: scale and bias in the image preprocessing, the
    three 1/std factors as a multiplication in the graph."""
    root = onnx_source_project
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    image = {"scale": 1 / 255, "bias": [-m for m in mean], "channel_scale": [1 / s for s in std]}
    edit_recipe(root, lambda d: d["coreml"]["nn"].update(image_inputs={"image": image}), name="zoo")
    code, _ = run_doit(root, monkeypatch, "validate:zoo")
    assert code == 0, (root / "doit-report.txt").read_text()
    report = json.loads((root / "artifacts" / "zoo" / "report.json").read_text())
    nn = [c for c in report["comparisons"] if c["artifact"] == "nn"]
    assert len(nn) == 4 and all(c["passed"] and c["figures"]["top1"] == 1.0 for c in nn)
    layers = describe(root / "artifacts" / "zoo" / "zoo_nn.mlmodel")["ops"]["counts"]
    assert layers["multiply"] == 1 and layers["loadConstantND"] == 1  # the 1/std factors, multiplied in
