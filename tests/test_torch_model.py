"""Building the PyTorch model from a recipe: factory, init method, weights with key rewriting, examples."""
from __future__ import annotations

import warnings

import pytest
import torch
from projects import make_tiny_project

from modelbuild.diagnostics import BuildWarning
from modelbuild.recipe import load_recipe
from modelbuild.recipe.schema import Weights
from modelbuild.references import ModelBuildError
from modelbuild.torch_model import build_model, example_inputs, load_weights, rewrite_key
from modelbuild.zoo.ffdnet import FFDNet


def test_rewrite_key_strips_then_renames():
    rename = {"intermediate_dncnn.itermediate_dncnn.": "body."}
    assert rewrite_key("module.intermediate_dncnn.itermediate_dncnn.3.weight", "module.", rename) == "body.3.weight"
    assert rewrite_key("other.weight", "module.", rename) == "other.weight"


def test_weights_are_loaded(tmp_path):
    root = make_tiny_project(tmp_path)
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    expected = torch.load(root / "weights" / "tiny.pth", weights_only=True)
    model = build_model(recipe, root)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_mismatched_weights_list_missing_and_unexpected_keys(tmp_path):
    torch.save({"module.x.weight": torch.zeros(1)}, tmp_path / "w.pth")
    with pytest.raises(ModelBuildError) as caught:
        load_weights(FFDNet(1, 4, 3), tmp_path / "w.pth", Weights(path="w.pth"))
    message = str(caught.value)
    assert "missing keys body.0.weight, body.2.weight, body.3.weight" in message
    assert "unexpected keys module.x.weight" in message
    assert "use strip_prefix / rename" in message


def test_weights_key_selects_a_sub_dict(tmp_path):
    model = FFDNet(1, 4, 3)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "ckpt.pth")
    other = FFDNet(1, 4, 3)
    load_weights(other, tmp_path / "ckpt.pth", Weights(path="ckpt.pth", key="state_dict"))
    assert torch.equal(other.body[0].weight, model.body[0].weight)
    with pytest.raises(ModelBuildError, match="has no key 'model'; it has state_dict"):
        load_weights(other, tmp_path / "ckpt.pth", Weights(path="ckpt.pth", key="model"))


def test_no_weights_warns_and_is_seeded(tmp_path):
    root = make_tiny_project(tmp_path)
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    recipe = recipe.model_copy(update={"model": recipe.model.model_copy(update={"weights": None})})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = build_model(recipe, root), build_model(recipe, root)
    assert any(issubclass(w.category, BuildWarning) and "random initialisation (seed 0)" in str(w.message)
               for w in caught)
    assert torch.equal(first.body[0].weight, second.body[0].weight)


def test_init_method_is_called(tmp_path):
    root = make_tiny_project(tmp_path)
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    model_source = recipe.model.model_copy(update={"factory": "projects:WithInit", "args": {},
                                                   "weights": None, "init": "init_weights"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(recipe.model_copy(update={"model": model_source}), root)
    assert torch.all(model.linear.weight == 0.5)


def test_example_inputs_are_deterministic_and_in_range(tmp_path):
    recipe = load_recipe(make_tiny_project(tmp_path) / "recipes" / "tiny.yaml")
    first, second = example_inputs(recipe), example_inputs(recipe)
    assert torch.equal(first["x"], second["x"])
    assert first["x"].shape == (1, 1, 16, 16) and 0 <= first["x"].min() and first["x"].max() <= 1
    assert torch.all(first["sigma"] == 0.1)
