"""The ResNet50 write-up's failure and its repair, as recipes built with doit.

A classifier that flattens with x.view(x.size(0), -1), given a flexible batch and converted through
ONNX to a NeuralNetwork, keeps the export's reshape target [1, -1]: at batch 2 and more the Core ML
model feeds the wrong shape to its innerProduct. The reference runtime refuses that with a named
shape error during validation, on Linux. The same recipe plus the surgery step
`coreml::reshape_to_flatten` builds a model that validates at every batch size.
"""
from __future__ import annotations

import json

import pytest
import yaml
from projects import run_doit

pytestmark = pytest.mark.slow

RECIPE = {
    "name": "viewnet",
    "model": {"factory": "projects:ViewFlattenClassifier", "seed": 1},
    "inputs": {"x": {"shape": [1, 3, 16, 16], "flexible": {"range": {0: [1, 4]}}}},
    "outputs": {"logits": {}},
    "coreml": {"nn": {"frontend": "onnx", "format": "neuralnetwork", "onnx_graph_check": False}},
}


def _build(tmp_path, monkeypatch, surgery: list) -> tuple[int, dict]:
    recipe = {**RECIPE, "coreml": {"nn": {**RECIPE["coreml"]["nn"], "surgery": surgery}}}
    (tmp_path / "recipes").mkdir(exist_ok=True)
    (tmp_path / "recipes" / "viewnet.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    code, _ = run_doit(tmp_path, monkeypatch, "build:viewnet")
    return code, json.loads((tmp_path / "artifacts" / "viewnet" / "report.json").read_text())


def test_baked_reshape_fails_validation_with_a_named_shape_error(tmp_path, monkeypatch):
    code, report = _build(tmp_path, monkeypatch, surgery=[])
    assert code != 0
    failed = [c for c in report["comparisons"] if not c["passed"]]
    assert failed and {c["artifact"] for c in failed} == {"nn"}
    batches = {c["sample"].split("@ ")[1].split()[0] for c in failed}
    assert batches == {"max", "other"}  # batch 4 and 3 fail; batch 1 (min and default) passes
    for comparison in failed:
        assert comparison["error"].startswith("ShapeMismatchError: innerProduct layer")
    report_text = (tmp_path / "doit-report.txt").read_text()
    assert "ShapeMismatchError: innerProduct layer" in report_text


def test_surgery_step_repairs_it(tmp_path, monkeypatch):
    code, report = _build(tmp_path, monkeypatch, surgery=[{"step": "coreml::reshape_to_flatten"}])
    assert code == 0, (tmp_path / "doit-report.txt").read_text()
    nn = [c for c in report["comparisons"] if c["artifact"] == "nn" and c["output"] == "logits"]
    assert len(nn) == 3 and all(c["passed"] and c["figures"]["max_abs"] < 1e-5 for c in nn)
