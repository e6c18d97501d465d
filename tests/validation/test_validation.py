"""Validation on a tiny project: a passing run, a failing run that lists every failure, the reports."""
from __future__ import annotations

import json

import numpy as np
import pytest
from projects import edit_recipe, run_doit, write_tiny_weights

from modelbuild.recipe import load_recipe
from modelbuild.stages.validate_stage import ValidationFailed, validate
from modelbuild.validation import validate_recipe, write_reports
from modelbuild.samples import make_samples

pytestmark = pytest.mark.slow


@pytest.fixture
def built(tiny_project, monkeypatch):
    """The tiny project with an image variant, built (ONNX + Core ML, validation included)."""
    edit_recipe(tiny_project, lambda d: d["coreml"].update(image={
        "frontend": "onnx", "format": "neuralnetwork",
        "image_inputs": {"x": {"scale": 1 / 255, "color_layout": "GRAYSCALE"}},
        "image_outputs": {"y": {"scale": 255.0, "color_layout": "GRAYSCALE"}}}))
    code, executed = run_doit(tiny_project, monkeypatch)
    assert code == 0, (tiny_project / "doit-report.txt").read_text()
    assert "validate:tiny" in executed
    return tiny_project


def _recipe(root):
    return load_recipe(root / "recipes" / "tiny.yaml")


def test_passing_validation_compares_every_artifact(built):
    report = validate_recipe(_recipe(built), built, built / "artifacts" / "tiny")
    assert report.passed
    assert sorted(report.artifacts) == ["image", "onnx", "viaonnx", "viatorch"]
    assert report.artifacts["viaonnx"]["backend"] == "modelbuild.runtime (reference)"
    by_artifact = {c.artifact: c for c in report.comparisons}
    assert by_artifact["viaonnx"].figures["max_abs"] < 1e-5
    assert by_artifact["image"].units == "pixel levels" and by_artifact["image"].figures["max_abs"] <= 1.0


def test_failing_validation_lists_every_failure(built):
    # New weights, old artifacts: every artifact now disagrees with the PyTorch model.
    write_tiny_weights(built / "weights" / "tiny.pth", seed=7)
    with pytest.raises(ValidationFailed) as caught:
        validate(_recipe(built), built, built / "artifacts" / "tiny")
    table = str(caught.value).splitlines()
    assert table[0].startswith("4 comparison(s) failed")
    assert table[1].split() == ["artifact", "sample", "output", "figure", "value", "limit"]
    assert sorted(line.split()[0] for line in table[2:]) == ["image", "onnx", "viaonnx", "viatorch"]
    report = json.loads((built / "artifacts" / "tiny" / "report.json").read_text())
    assert report["passed"] is False
    assert [c["passed"] for c in report["comparisons"]] == [False] * 4


def test_an_artifact_that_cannot_run_is_a_failure_not_a_pass(built):
    (built / "artifacts" / "tiny" / "tiny_viatorch.mlmodel").write_bytes(b"not a model")
    report = validate_recipe(_recipe(built), built, built / "artifacts" / "tiny")
    failed = report.failures()
    assert [c.artifact for c in failed] == ["viatorch"]
    assert failed[0].error and not failed[0].checks


def test_tolerance_from_the_recipe_is_applied(built):
    edit_recipe(built, lambda d: d.setdefault("validate", {}).update(tolerances={"onnx": {"max_abs": 1e-12,
                                                                                         "min_psnr": 20}}))
    report = validate_recipe(_recipe(built), built, built / "artifacts" / "tiny")
    [onnx] = [c for c in report.comparisons if c.artifact == "onnx"]
    assert [(k.figure, k.limit, k.kind) for k in onnx.checks] == [("max_abs", 1e-12, "max"), ("psnr", 20, "min")]
    assert onnx.passed == (onnx.figures["max_abs"] <= 1e-12)


def test_reports_are_written(built):
    report = validate_recipe(_recipe(built), built, built / "artifacts" / "tiny")
    files = write_reports(report, built / "artifacts" / "tiny")
    assert [f.name for f in files] == ["report.json", "report.md", "report.html"]
    data = json.loads(files[0].read_text())
    assert data["passed"] and len(data["comparisons"]) == 4
    assert "| ✓ | viaonnx | random-0 | y |" in files[1].read_text()
    page = files[2].read_text()
    assert page.count("data:image/png;base64,") >= 4 and "modelbuild.runtime (reference)" in page


def test_random_samples_are_seeded_and_counted(built):
    edit_recipe(built, lambda d: d.setdefault("validate", {}).update(random_samples=3))
    report = validate_recipe(_recipe(built), built, built / "artifacts" / "tiny")
    assert report.samples == ["random-0", "random-1", "random-2"] and report.passed
    first, again = make_samples(_recipe(built), built), make_samples(_recipe(built), built)
    assert all(np.array_equal(a.feeds["x"], b.feeds["x"]) for a, b in zip(first, again))
    assert not np.array_equal(first[0].feeds["x"], first[1].feeds["x"])
