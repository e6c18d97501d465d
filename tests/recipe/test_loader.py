"""Recipe loading: the shipped recipes load; every kind of malformed recipe gives its one-line error."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelbuild.recipe import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((REPO / "recipes" / "ffdnet.yaml").read_text())
# The shipped FFDNet recipe without its compressed variants and their tolerances
# (tests/recipe/test_compression.py has those), so that the line numbers below stay put.
BASE = {**SHIPPED, "coreml": {name: SHIPPED["coreml"][name] for name in ("multiarray", "image")},
        "validate": {key: value for key, value in SHIPPED["validate"].items() if key != "tolerances"}}


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_load(path):
    assert load_recipe(path).name


def test_ffdnet_recipe_values():
    recipe = load_recipe(REPO / "recipes" / "ffdnet.yaml")
    assert list(recipe.inputs) == ["my_input", "my_sigma"]
    assert recipe.inputs["my_input"].shape == [1, 3, 512, 512]
    assert list(recipe.outputs) == ["my_output"]
    assert recipe.onnx_file == "FFDNet.onnx"
    assert recipe.coreml_file("multiarray") == "FFDNet.mlmodel"
    assert recipe.coreml_file("image") == "FFDNet_image.mlmodel"
    assert recipe.coreml["image"].image_inputs["my_input"].scale == pytest.approx(1 / 255)
    assert recipe.coreml["image"].image_outputs["my_output"].scale == 255.0


@pytest.fixture
def project(tmp_path):
    """A project folder with recipes/ and the sample the base recipe names."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "astronaut.png").write_bytes(b"")
    return tmp_path


def _error(project: Path, mutate=None, raw: str | None = None) -> str:
    data = copy.deepcopy(BASE)
    if mutate:
        mutate(data)
    path = project / "recipes" / "x.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return str(caught.value).replace(str(path), "X").replace(str(project), "ROOT")


def _set(*keys_and_value):
    *keys, last, value = keys_and_value

    def mutate(data):
        for key in keys:
            data = data[key]
        data[last] = value
    return mutate


CASES = {
    "unknown top-level key": (_set("nmae", "x"), None,
        "X:61: nmae: unknown key; expected one of name, description, metadata, model, inputs, outputs, "
        "classifier, onnx, coreml, validate, agreement"),
    "unknown nested key": (_set("coreml", "image", "scael", 1), None,
        "X:54: coreml.image.scael: unknown key; expected one of frontend, capture, format, minimum_deployment_target, "
        "compute_precision, file, image_inputs, image_outputs, classifier, fixed_shape, onnx_graph_check, surgery, "
        "from_variant, compression"),
    "wrong type": (_set("inputs", "my_input", "shape", "big"), None,
        "X:15: inputs.my_input.shape: Input should be a valid list, got 'big'"),
    "missing field": (lambda d: d.pop("model"), None, "X:1: model: required field is missing"),
    "bad shape": (_set("inputs", "my_input", "shape", [1, 3, 0, 5]), None,
        "X:15: inputs.my_input.shape: expected 1 to 5 dimensions, each from 1 to 2147483647 (Core ML's limit), got [1, 3, 0, 5]"),
    "unknown frontend": (_set("coreml", "image", "frontend", "tflite"), None,
        "X:42: coreml.image.frontend: Input should be 'onnx' or 'torch', got 'tflite'"),
    "factory syntax": (_set("model", "factory", "no colon"), None,
        "X:9: model.factory: expected 'package.module:attr' (e.g. 'modelbuild.zoo.ffdnet:FFDNet'), got 'no colon'"),
    "bad import path": (_set("model", "factory", "nosuchpkg.x:Y"), None,
        "X:9: model.factory: cannot import 'nosuchpkg.x': no package 'nosuchpkg' is installed"),
    "missing weights file": (_set("model", "weights", {"path": "nope.pth"}), None,
        "X:14: model.weights.path: no such file: ROOT/nope.pth"),
    "duplicate feature names": (_set("outputs", "my_input", {}), None,
        "X:32: outputs.my_input: 'my_input' is also an input name; feature names must be unique"),
    "image scale on a non-image shape": (_set("coreml", "image", "image_inputs", "my_sigma", {"scale": 2.0}), None,
        "X:50: coreml.image.image_inputs.my_sigma: an RGB image needs shape [1, 3, H, W], "
        "but inputs.my_sigma.shape is [1]"),
    "neuralnetwork with a new target": (_set("coreml", "image", "minimum_deployment_target", "iOS16"), None,
        "X:44: coreml.image.minimum_deployment_target: neuralnetwork cannot target iOS16; "
        "expected one of iOS13, iOS14, macOS10_15, macOS11"),
    "two variants, one file": (_set("coreml", "image", "file", "FFDNet.mlmodel"), None,
        "X:45: coreml.image.file: FFDNet.mlmodel is also written by coreml.multiarray"),
    "duplicate YAML key": (None, "name: x\nname: y\n", "X:2: name: duplicate key 'name' (first given on line 1)"),
    "invalid YAML": (None, "name: [x\n", "X:2: invalid YAML: did not find expected ',' or ']'"),
    "opset out of range": (_set("onnx", "opset", 99), None,
        "X:33: onnx.opset: Input should be less than or equal to 21, got 99"),
    "range reversed": (_set("inputs", "my_input", "range", [1, 0]), None,
        "X:20: inputs.my_input.range: expected [min, max] with min < max, got [1.0, 0.0]"),
    "bias length": (_set("coreml", "image", "image_inputs", "my_input", "bias", [1, 2]), None,
        "X:50: coreml.image.image_inputs.my_input.bias: RGB takes 3 bias value(s), got 2"),
    "file suffix vs format": (_set("coreml", "image", "file", "x.mlpackage"), None,
        "X:45: coreml.image.file: a neuralnetwork artifact is a plain file name ending in .mlmodel (letters, digits, "
        "_ . + -; no folder), "
        "got 'x.mlpackage'"),
    "bad recipe name": (_set("name", "Bad Name"), None,
        "X:1: name: String should match pattern '^[a-z0-9][a-z0-9_-]*$', got 'Bad Name'"),
    "missing sample": (_set("validate", "samples", ["nope.png"]), None,
        "X:56: validate.samples.0: no such file: ROOT/nope.png"),
    "image output not an output": (_set("coreml", "image", "image_outputs", "nope", {}), None,
        "X:54: coreml.image.image_outputs.nope: no output named 'nope'; expected one of my_output"),
    "mlprogram with an old target": (_set("coreml", "image", "format", "mlprogram"), None,
        "X:44: coreml.image.minimum_deployment_target: mlprogram cannot target iOS13; expected one of iOS15, "
        "iOS16, iOS17, iOS18, macOS12, macOS13, macOS14, macOS15\n"
        "X:45: coreml.image.file: a mlprogram artifact is a plain file name ending in .mlpackage (letters, digits, "
        "_ . + -; no folder), "
        "got 'FFDNet_image.mlmodel'"),
    "no inputs": (_set("inputs", {}), None,
        "X:13: inputs: Dictionary should have at least 1 item after validation, not 0, got {}"),
    "string for an integer": (_set("onnx", "opset", "17"), None,
        "X:33: onnx.opset: Input should be a valid integer, got '17'"),
    "not a mapping": (None, "- a\n- b\n", "X:1: expected a mapping of recipe fields (name, model, inputs, ...), got list"),
    "tolerance for an unknown artifact": (_set("validate", "tolerances", {"nope": {"max_abs": 1.0}}), None,
        "X:62: validate.tolerances.nope: unknown artifact 'nope'; expected 'onnx' or one of multiarray, image"),
    "classifier without labels": (_set("classifier", {"labels": {}}), None,
        "X:62: classifier.labels: give exactly one of python ('module:attr') or file (a labels file)\n"
        "X:50: coreml.image.image_outputs: a classifier's outputs are a label and probabilities"),
    "classifier variant without a classifier section": (_set("coreml", "multiarray", "classifier", True), None,
        "X:41: coreml.multiarray.classifier: needs a top-level classifier section with the labels"),
    "normalisation channels": (_set("model", "normalize", {"mean": [0.5], "std": [0.5, 0.5, 0.5]}), None,
        "X:13: model.normalize: mean and std need one value per channel of the first input (3); got 1 and 3"),
    "agreement with an unknown model": (_set("agreement", {"models": {"a": "torch", "b": "nope"}}), None,
        "X:64: agreement.models.b: unknown model 'nope'; expected torch, onnx, one of the variants "
        "(multiarray, image), '<recipe>:<model>' or a .onnx/.mlmodel/.mlpackage path"),
    "unknown surgery step": (_set("onnx", "surgery", [{"step": "onnx::nope"}]), None,
        "X:36: onnx.surgery.0: unknown ONNX surgery step 'onnx::nope'; expected one of "
        "onnx::bool_as_int32, onnx::broadcast_where_branches, onnx::flatten_shape_reshape, onnx::fold_constants, "
        "onnx::rename_inputs, onnx::rename_outputs, onnx::set_opset"),
    "surgery step with a bad parameter": (_set("coreml", "image", "surgery", [{"step": "coreml::add_softmax",
                                                                               "nope": 1}]), None,
        "X:56: coreml.image.surgery.0.nope: unknown key; expected one of step, output, axis"),
    "unknown ONNX exporter": (_set("onnx", "exporter", "tflite"), None,
        "X:35: onnx.exporter: Input should be 'torchscript' or 'dynamo', got 'tflite'"),
    "unknown capture": (_set("coreml", "image", "capture", "script"), None,
        "X:54: coreml.image.capture: Input should be 'trace' or 'export', got 'script'"),
    "capture on an onnx variant": (_set("coreml", "image", "capture", "export"), None,
        "X:54: coreml.image.capture: applies to frontend torch only; frontend onnx converts the ONNX file "
        "(choose how it is exported with onnx.exporter)"),
    "exporter of an ONNX-source recipe": (lambda d: (d.update(model={"onnx": "samples/zoo.onnx"}),
                                                     d["onnx"].update(exporter="dynamo")), None,
        "X:32: onnx.exporter: applies to a PyTorch factory; an ONNX-source recipe's file is copied, not exported\n"
        "X:9: model.onnx: no such file: ROOT/samples/zoo.onnx"),
    "feature name not an identifier": (_set("outputs", {"my output": {}}), None,
        "X:29: outputs: name 'my output' must be an identifier (letters, digits, _; not starting with a digit)"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_malformed_recipe_gives_one_line_per_problem(project, case):
    mutate, raw, expected = CASES[case]
    assert _error(project, mutate, raw) == expected


def test_every_problem_is_reported(project):
    def two_problems(data):
        data["onnx"]["opset"] = 99
        data["coreml"]["image"]["frontend"] = "tflite"
    assert _error(project, two_problems).splitlines() == [
        "X:33: onnx.opset: Input should be less than or equal to 21, got 99",
        "X:42: coreml.image.frontend: Input should be 'onnx' or 'torch', got 'tflite'",
    ]


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match=r"nope.yaml: cannot read the recipe \(No such file or directory\)"):
        load_recipe(tmp_path / "nope.yaml")


def test_check_command_prints_errors_not_tracebacks(project):
    path = project / "recipes" / "x.yaml"
    path.write_text("name: x\nmodel: 3\n")
    result = subprocess.run([sys.executable, "-m", "modelbuild", "check", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{path}:2: model: Input should be a valid dictionary or instance of ModelSource, got 3" in result.stderr


def test_check_command_accepts_the_shipped_recipe():
    result = subprocess.run([sys.executable, "-m", "modelbuild", "check", str(REPO / "recipes" / "ffdnet.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ffdnet: 4 Core ML variant(s)" in result.stdout


def test_check_command_imports_the_factory(project):
    path = project / "recipes" / "x.yaml"
    data = copy.deepcopy(BASE)
    data["model"]["factory"] = "modelbuild.zoo.ffdnet:NoSuchNet"
    data["validate"]["samples"] = []
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "modelbuild", "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{path}: model.factory: module 'modelbuild.zoo.ffdnet' has no attribute 'NoSuchNet'"
    fast = subprocess.run([sys.executable, "-m", "modelbuild", "check", "--fast", str(path)], capture_output=True,
                          text=True)
    assert fast.returncode == 0


def test_check_command_imports_a_factory_module_kept_in_the_project(project, tmp_path):
    (project / "newuser_models.py").write_text("import torch\n\ndef Net():\n    return torch.nn.Linear(3, 2)\n")
    data = copy.deepcopy(BASE)
    data.update(model={"factory": "newuser_models:Net"}, inputs={"x": {"shape": [1, 3]}}, outputs={"y": {}},
                coreml={}, validate={})
    path = project / "recipes" / "x.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    console_script = Path(sys.executable).with_name("modelbuild")  # not `python -m`: the cwd is not on sys.path
    result = subprocess.run([str(console_script), "check", str(path)], capture_output=True, text=True, cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: ok (ffdnet: 0 Core ML variant(s))"


def test_check_no_import_runs_nothing_of_the_recipe(project):
    (project / "sideeffect_models.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('imported.txt').write_text('ran')\n"
        "import torch\n\ndef Net():\n    return torch.nn.Linear(3, 2)\n")
    data = copy.deepcopy(BASE)
    data.update(model={"factory": "sideeffect_models:Net"}, inputs={"x": {"shape": [1, 3]}}, outputs={"y": {}},
                coreml={}, validate={})
    path = project / "recipes" / "x.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    quiet = subprocess.run([sys.executable, "-m", "modelbuild", "check", "--no-import", str(path)],
                           capture_output=True, text=True)
    assert quiet.returncode == 0 and not (project / "imported.txt").exists()
    full = subprocess.run([sys.executable, "-m", "modelbuild", "check", str(path)], capture_output=True, text=True)
    assert full.returncode == 0 and (project / "imported.txt").read_text() == "ran"


def test_check_reports_a_factory_module_that_fails_to_import(project):
    (project / "broken_models.py").write_text("raise RuntimeError('no GPU found')\n")
    data = copy.deepcopy(BASE)
    data.update(model={"factory": "broken_models:Net"}, inputs={"x": {"shape": [1, 3]}}, outputs={"y": {}},
                coreml={}, validate={})
    path = project / "recipes" / "x.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "modelbuild", "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"{path}: model.factory: importing module 'broken_models' failed: "
                                     "RuntimeError: no GPU found")
