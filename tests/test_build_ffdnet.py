"""The shipped FFDNet recipe, built for real with doit in a copy of the project."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from projects import REPO

from modelbuild.inspection import describe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """`doit build:ffdnet` run once in a fresh copy of recipes/, samples/ and dodo.py."""
    root = tmp_path_factory.mktemp("project")
    for part in ("recipes", "samples"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    result = subprocess.run([sys.executable, "-m", "doit", "build:ffdnet"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "artifacts" / "ffdnet"


def _features(path: Path, role: str) -> dict[str, dict]:
    return {f["name"]: f for f in describe(path)[role]}


def test_build_leaves_the_artifacts_reports_and_a_manifest(built):
    assert sorted(p.name for p in built.iterdir()) == [
        ".records", "FFDNet.mlmodel", "FFDNet.onnx", "FFDNet_image.mlmodel", "FFDNet_int8.mlmodel",
        "FFDNet_palette6.mlpackage", "FFDNet_palette6.mlpackage.sha256", "manifest.json", "report.html",
        "report.json", "report.md", "timings.json"]
    stages = ("coreml.image", "coreml.multiarray", "coreml.multiarray_int8", "coreml.program_palette6", "onnx",
              "validate")
    assert sorted(p.name for p in (built / ".records").iterdir() if p.suffix != ".stat") == [  # records, cache keys
        ".lock", *(f"{stage}.{kind}" for stage in stages for kind in ("cache-key", "json"))]


def test_multiarray_variant_interface(built):
    inputs = _features(built / "FFDNet.mlmodel", "inputs")
    assert inputs["my_input"]["type"] == "multiArray"
    assert (inputs["my_input"]["shape"], inputs["my_input"]["dtype"]) == ([1, 3, 512, 512], "FLOAT32")
    assert (inputs["my_sigma"]["shape"], inputs["my_sigma"]["dtype"]) == ([1], "FLOAT32")
    assert _features(built / "FFDNet.mlmodel", "outputs")["my_output"]["shape"] == [1, 3, 512, 512]


def test_image_variant_interface(built):
    description = describe(built / "FFDNet_image.mlmodel")
    inputs = {f["name"]: f for f in description["inputs"]}
    outputs = {f["name"]: f for f in description["outputs"]}
    assert (inputs["my_input"]["type"], inputs["my_input"]["width"], inputs["my_input"]["height"],
            inputs["my_input"]["color_space"]) == ("image", 512, 512, "RGB")
    assert inputs["my_sigma"]["type"] == "multiArray" and inputs["my_sigma"]["shape"] == [1]
    assert (outputs["my_output"]["type"], outputs["my_output"]["color_space"]) == ("image", "RGB")
    [scaler] = description["preprocessing"]
    assert scaler["feature"] == "my_input" and scaler["scale"] == pytest.approx(1 / 255)


def test_second_build_is_a_noop(built):
    result = subprocess.run([sys.executable, "-m", "doit", "build:ffdnet"], cwd=built.parents[1],
                            capture_output=True, text=True, check=True)
    assert [line for line in result.stdout.splitlines() if line.startswith(".")] == []
