"""Flexible shapes: allowed shapes, test shapes, refused shapes, ONNX dynamic axes, and the routes refused."""
from __future__ import annotations

import copy

import pytest
import yaml
from projects import REPO

from modelbuild.recipe import RecipeError, load_recipe
from modelbuild.recipe.schema import Input
from modelbuild.recipe.shapes import (allows, flexible_dims, onnx_dynamic_axes, outside_shape, shape_sets,
                                     validation_shapes)

RANGE = Input.model_validate({"shape": [1, 3, 128, 128], "flexible": {"range": {2: [32, 256], 3: [32, -1]}}})
ENUMERATED = Input.model_validate({"shape": [1, 3, 64, 64],
                                   "flexible": {"enumerated": [[1, 3, 64, 64], [1, 3, 32, 48], [1, 3, 96, 96]]}})


def test_range_allows_and_refuses():
    assert allows(RANGE, [1, 3, 32, 5000]) and allows(RANGE, [1, 3, 256, 32])
    assert not allows(RANGE, [1, 3, 257, 64]) and not allows(RANGE, [1, 3, 31, 64])
    assert not allows(RANGE, [2, 3, 64, 64]) and not allows(RANGE, [1, 3, 64])
    assert flexible_dims(RANGE) == [2, 3]


def test_range_test_shapes_cover_min_default_max_and_another():
    shapes = dict(validation_shapes(RANGE))
    assert shapes["min"] == [1, 3, 32, 32] and shapes["default"] == [1, 3, 128, 128]
    assert shapes["max"] == [1, 3, 256, 256]  # the unbounded width is tested at twice the default
    assert shapes["other"] not in (shapes["min"], shapes["default"], shapes["max"])
    assert all(allows(RANGE, shape) for shape in shapes.values())
    assert outside_shape(RANGE) == [1, 3, 257, 128]


def test_enumerated_test_shapes_are_every_shape():
    assert [shape for _, shape in validation_shapes(ENUMERATED)] == [[1, 3, 64, 64], [1, 3, 32, 48], [1, 3, 96, 96]]
    assert flexible_dims(ENUMERATED) == [2, 3]
    outside = outside_shape(ENUMERATED)
    assert outside is not None and not allows(ENUMERATED, outside)


def test_shape_sets_and_dynamic_axes_of_the_flexible_recipe():
    recipe = load_recipe(REPO / "recipes" / "ffdnet_flexible.yaml")
    sets = dict(shape_sets(recipe))
    assert list(sets) == ["min", "default", "max", "other", "extra 1"]
    assert sets["extra 1"] == {"my_input": [1, 3, 75, 101], "my_sigma": [1]}
    assert onnx_dynamic_axes(recipe) == {"my_input": {2: "my_input_2", 3: "my_input_3"}}


def _flexible_error(tmp_path, edit) -> str:
    data = yaml.safe_load((REPO / "recipes" / "ffdnet_flexible.yaml").read_text())
    data = copy.deepcopy(data)
    data["validate"]["samples"] = []
    edit(data)
    (tmp_path / "recipes").mkdir(exist_ok=True)
    path = tmp_path / "recipes" / "x.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return str(caught.value).replace(str(path), "X")


@pytest.mark.parametrize("variant, reason", [
    ({"frontend": "onnx", "format": "mlprogram"}, "cannot be converted with frontend 'onnx' to format 'mlprogram'"),
    ({"frontend": "torch", "format": "neuralnetwork", "image_outputs": {"my_output": {"scale": 255.0}}},
     "NeuralNetwork image outputs have a fixed size"),
])
def test_unsupported_routes_are_refused_before_conversion(tmp_path, variant, reason):
    message = _flexible_error(tmp_path, lambda d: d["coreml"].update(bad=variant))
    assert message.startswith("X:")
    assert ": coreml.bad: " in message and reason in message
    assert message.endswith("(or set fixed_shape: true on this variant)")


def test_unbounded_range_needs_a_maximum_for_mlprogram(tmp_path):
    message = _flexible_error(tmp_path, lambda d: d["inputs"]["my_input"]["flexible"]["range"].update({3: [32, -1]}))
    assert "coreml.program: " in message and "unbounded ranges (max -1)" in message


def test_fixed_shape_variants_are_exempt(tmp_path):
    data = yaml.safe_load((REPO / "recipes" / "ffdnet_flexible.yaml").read_text())
    data["coreml"]["bad"] = {"frontend": "onnx", "format": "mlprogram", "fixed_shape": True}
    data["validate"]["samples"] = []
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "x.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_recipe(tmp_path / "recipes" / "x.yaml").coreml["bad"].fixed_shape


@pytest.mark.parametrize("flexible, message", [
    ({"range": {2: [200, 256]}}, "inputs.my_input.flexible.range.2: [min, max] = [200, 256] must hold the default "
                                 "size 128 (min >= 1; max -1 for unbounded)"),
    ({"range": {7: [1, 2]}}, "inputs.my_input.flexible.range.7: expected a dimension index below 4 with [min, max], "
                             "got 7: [1, 2]"),
    ({"range": {2: [32, 256]}, "enumerated": [[1, 3, 128, 128]]},
     "inputs.my_input.flexible: give exactly one of range (per-dimension [min, max]) or enumerated (a list of shapes)"),
    ({"range": {2: [32, 256]}, "test_shapes": [[1, 3, 300, 128]]},
     "inputs.my_input.flexible.test_shapes.0: [1, 3, 300, 128] is not among the declared shapes"),
])
def test_bad_flexible_declarations(tmp_path, flexible, message):
    error = _flexible_error(tmp_path, lambda d: d["inputs"]["my_input"].update(flexible=flexible))
    assert message in error
