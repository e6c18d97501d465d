"""Core ML output shapes come from ONNX shape inference or the model's one run, and match running the model."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from projects import REPO, TOKEN_RECIPE, run_doit, make_classifier_project, make_tiny_project

from modelbuild import shared_model
from modelbuild.feeds import generated_inputs
from modelbuild.onnx_shapes import inferred_output_shapes
from modelbuild.recipe import load_recipe
from modelbuild.stages.coreml_stage import _output_shapes, _recorded_output_shapes
from modelbuild.stages.onnx_stage import export_onnx
from modelbuild.torch_model import build_model
from modelbuild.validation import runners


def _project(tmp_path, name):
    if name == "tiny":
        return make_tiny_project(tmp_path), "tiny"
    if name == "clf":
        return make_classifier_project(tmp_path), "clf"
    (tmp_path / "recipes").mkdir()
    if name == "tokens":  # a dict-returning model, two outputs picked by name
        data = {**TOKEN_RECIPE, "outputs": {"logits": {}, "hidden": {}}}
        (tmp_path / "recipes" / "tokens.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return tmp_path, "tokens"
    shutil.copy(REPO / "recipes" / f"{name}.yaml", tmp_path / "recipes")  # ffdnet, ffdnet_flexible (dynamic axes)
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    return tmp_path, name


@pytest.mark.parametrize("name", ["tiny", "ffdnet_flexible", "clf", "tokens"])
def test_shapes_match_running_the_model_without_running_it_again(tmp_path, monkeypatch, name):
    root, recipe_name = _project(tmp_path, name)
    recipe = load_recipe(root / "recipes" / f"{recipe_name}.yaml")
    onnx_path = _export(root, recipe, monkeypatch)
    shared_model.forget_models()
    feeds = generated_inputs(recipe)
    torch_outputs = runners.TorchRunner(build_model(recipe, root), list(recipe.outputs)).run(feeds)
    onnx_outputs = runners.OnnxRunner(onnx_path).run(feeds)
    expected = {name: value.shape for name, value in torch_outputs.items()}
    assert expected == dict(zip(recipe.outputs, (v.shape for v in onnx_outputs.values())))

    sessions = []
    monkeypatch.setattr(runners, "onnx_session", lambda path: sessions.append(path))
    assert _output_shapes(recipe, onnx_path, root, "onnx") == expected
    assert _output_shapes(recipe, onnx_path, root, "torch") == expected
    assert sessions == []  # shape inference or the ONNX stage's record; the model's one run


def _export(root, recipe, monkeypatch):
    """Run the ONNX stage (its record is written as in a build); the ONNX file."""
    code, _ = run_doit(root, monkeypatch, f"onnx:{recipe.name}")
    assert code == 0, (root / "doit-report.txt").read_text()
    return root / "artifacts" / recipe.name / recipe.onnx_file


def test_the_onnx_stage_record_is_used_only_for_the_file_it_describes(tmp_path, monkeypatch):
    root, _ = _project(tmp_path, "ffdnet_flexible")  # shape arithmetic: inference leaves the sizes unknown
    recipe = load_recipe(root / "recipes" / "ffdnet_flexible.yaml")
    onnx_path = _export(root, recipe, monkeypatch)
    assert inferred_output_shapes(onnx_path, [tuple(spec.shape) for spec in recipe.inputs.values()]) is None
    assert _recorded_output_shapes(recipe, onnx_path) == [[1, 3, 128, 128]]
    data = bytearray(onnx_path.read_bytes())
    data[-1] ^= 1
    onnx_path.write_bytes(bytes(data))
    assert _recorded_output_shapes(recipe, onnx_path) is None


def test_a_graph_whose_output_size_depends_on_the_data_is_run_instead(tmp_path, monkeypatch):
    import onnx
    from onnx import TensorProto, helper

    root, _ = _project(tmp_path, "tiny")
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    x, sigma = (helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in (("x", [1, 1, 16, 16]), ("s", [1])))
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    graph = helper.make_graph([helper.make_node("NonZero", ["x"], ["y"])], "g", [x, sigma], [y])
    path = root / "nonzero.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert inferred_output_shapes(path, [(1, 1, 16, 16), (1,)]) is None
    made = []
    real = runners.onnx_session
    monkeypatch.setattr(runners, "onnx_session", lambda p: made.append(p) or real(p))
    shapes = _output_shapes(recipe, path, root, "onnx")
    nonzero = np.count_nonzero(generated_inputs(recipe)["x"])
    assert shapes == {"y": (4, nonzero)} and len(made) == 1


def test_one_onnxruntime_session_per_file_while_it_is_unchanged(tmp_path):
    root, _ = _project(tmp_path, "tiny")
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    path = root / "model.onnx"
    export_onnx(recipe, root, path)
    first = runners.onnx_session(path)
    assert runners.onnx_session(path) is first
    shutil.copy(path, root / "copy.onnx")
    shutil.move(root / "copy.onnx", path)  # same bytes, a new file: a new session
    assert runners.onnx_session(path) is not first


@pytest.fixture(autouse=True)
def _fresh_models():
    shared_model.forget_models()
    yield
    shared_model.forget_models()
