"""The wheel built from the repository works outside it: installed in a fresh virtual environment, its
`modelbuild` command checks and builds a tiny project, inspects and predicts its Core ML files, and the
package reads the data files pyproject.toml declares.

The fresh environment gets the wheel only; the third-party packages (torch, coremltools, ...) come from
this interpreter's site-packages through a path line in a .pth file, which adds that folder without
running the .pth files inside it, so an editable install of the checkout stays out.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from projects import TINY_RECIPE, write_tiny_weights

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# the tiny FFDNet of the build tests as a NeuralNetwork from ONNX and an ML Program from PyTorch:
# both frontends, both executors of the runtime
RECIPE = copy.deepcopy(TINY_RECIPE) | {"coreml": {"nn": {"frontend": "onnx", "format": "neuralnetwork"},
                                                  "program": {"frontend": "torch", "format": "mlprogram"}}}
CORE_ML_FILES = ["tiny_nn.mlmodel", "tiny_program.mlpackage"]

# Run by the fresh environment's python with {package: [data file]} and the package of floor.json:
# each data file's sha256 read through importlib.resources, and the pass rate the floor module loads.
PROBE = """
import hashlib, importlib, importlib.resources, json, sys
data, floor_package = json.loads(sys.argv[1]), sys.argv[2]
digests = {package: {name: hashlib.sha256(importlib.resources.files(package).joinpath(name).read_bytes()).hexdigest()
                     for name in names} for package, names in data.items()}
floor = importlib.import_module(floor_package + ".floor").load_floor()
print(json.dumps({"digests": digests, "floor": floor.pass_rate}))
"""


def _run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess:
    """Run `command` in `cwd` with nothing of the checkout on the path; fail with its output if it fails."""
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _ignored_by_git() -> list[str]:
    """The repository's .gitignore patterns as shutil.ignore_patterns names (what a checkout does not hold)."""
    lines = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [".git", *(line.strip().strip("/") for line in lines if line.strip() and line[0] not in "#!")]


def _declared_package_data() -> dict[str, dict[str, Path]]:
    """pyproject.toml's [tool.setuptools.package-data]: package -> {name inside it: the checkout's file}."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {}
    for package, patterns in pyproject["tool"]["setuptools"]["package-data"].items():
        folder = REPO.joinpath(*package.split("."))
        declared[package] = {path.relative_to(folder).as_posix(): path
                             for pattern in patterns for path in sorted(folder.glob(pattern))}
    assert all(declared.values()), f"pyproject.toml declares package data that names no file: {declared}"
    return declared


def _floor() -> tuple[str, Path]:
    """The package that declares floor.json as its data, and the checkout's floor.json."""
    found = [(package, path) for package, files in _declared_package_data().items()
             for name, path in files.items() if name == "floor.json"]
    assert len(found) == 1, f"pyproject.toml's package data should name one floor.json (the conformance floor); {found}"
    return found[0]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the checkout without what git ignores (the build writes build/ and *.egg-info into it)."""
    folder = tmp_path_factory.mktemp("source") / "modelbuild"
    shutil.copytree(REPO, folder, ignore=shutil.ignore_patterns(*_ignored_by_git()))
    return folder


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    """The wheel of the copy, built offline with the build backend this environment has."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
          "--check-build-dependencies", "--quiet", "--wheel-dir", dist, source], cwd=dist)
    [built] = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def fresh(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel and no other modelbuild; its bin/ folder."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel],
         cwd=venv)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=venv).stdout.strip())
    third_party = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    (site / "shared_third_party.pth").write_text("".join(f"{folder}\n" for folder in third_party))
    imported = Path(_run([python, "-c", "import modelbuild; print(modelbuild.__file__)"], cwd=venv).stdout.strip())
    assert imported.is_relative_to(venv), f"the fresh environment imports modelbuild from {imported}, not the wheel"
    return venv / "bin"


@pytest.fixture(scope="module")
def project(fresh, tmp_path_factory) -> Path:
    """A tiny project outside the checkout, built by the fresh environment's `modelbuild build`."""
    root = tmp_path_factory.mktemp("project")
    (root / "recipes").mkdir()
    (root / "recipes" / "tiny.yaml").write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    write_tiny_weights(root / "weights" / "tiny.pth")
    _run([fresh / "modelbuild", "build", "build:tiny"], cwd=root)
    return root


@pytest.fixture(scope="module")
def installed(fresh, project) -> dict:
    """What PROBE reports, run by the fresh environment's python in the project folder."""
    names = {package: list(files) for package, files in _declared_package_data().items()}
    return json.loads(_run([fresh / "python", "-c", PROBE, json.dumps(names), _floor()[0]], cwd=project).stdout)


def test_wheel_holds_every_file_of_its_packages(wheel, source):
    """Data files beside the code (READMEs, floor.json) are in the wheel, not only the .py files."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [top_level] = [name for name in names if name.endswith(".dist-info/top_level.txt")]
        packages = archive.read(top_level).decode().split()
    in_source = {path.relative_to(source).as_posix() for package in packages
                 for path in (source / package).rglob("*") if path.is_file()}
    assert in_source and sorted(in_source - names) == []


def test_check_accepts_the_recipe(fresh, project):
    result = _run([fresh / "modelbuild", "check", "recipes/tiny.yaml"], cwd=project)
    assert result.stdout.strip() == f"recipes/tiny.yaml: ok (tiny: {len(RECIPE['coreml'])} Core ML variant(s))"


def test_build_validated_every_artifact(project):
    report = json.loads((project / "artifacts" / "tiny" / "report.json").read_text())
    assert sorted(report["artifacts"]) == sorted(["onnx", *RECIPE["coreml"]])
    assert report["passed"] is True
    assert {comparison["artifact"] for comparison in report["comparisons"]} == set(report["artifacts"])


@pytest.mark.parametrize("name", CORE_ML_FILES)
def test_inspect_describes_the_interface(fresh, project, name):
    text = _run([fresh / "modelbuild", "inspect", f"artifacts/tiny/{name}"], cwd=project).stdout
    lines = {" ".join(line.split()) for line in text.splitlines()}
    for feature in ["x multiArray [1, 1, 16, 16] FLOAT32", "sigma multiArray [1] FLOAT32",
                    "y multiArray [1, 1, 16, 16] FLOAT32"]:
        assert feature in lines, text


@pytest.mark.parametrize("name", CORE_ML_FILES)
def test_predict_matches_this_environments_runtime(fresh, project, name, tmp_path):
    from modelbuild import runtime

    image = np.random.default_rng(1).uniform(0, 1, (1, 1, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", image)
    model_path = project / "artifacts" / "tiny" / name
    _run([fresh / "modelbuild", "predict", model_path, "--input", "x=x.npy", "--input", "sigma=0.1", "-o", "out"],
         cwd=tmp_path)
    expected = runtime.load(model_path).predict({"x": image, "sigma": np.array([0.1], np.float32)})["y"]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), expected, rtol=0, atol=1e-6)


def test_declared_package_data_is_read_through_importlib_resources(installed):
    assert installed["digests"] == {package: {name: hashlib.sha256(path.read_bytes()).hexdigest()
                                              for name, path in files.items()}
                                    for package, files in _declared_package_data().items()}


def test_conformance_floor_loads_from_the_installed_package(installed):
    assert installed["floor"] == json.loads(_floor()[1].read_text())["pass_rate_floor"]
