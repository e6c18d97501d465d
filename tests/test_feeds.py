"""Generated input values: the declared dtype, the range (integers inclusive), the example constant."""
from __future__ import annotations

import numpy as np

from modelbuild.feeds import generated_inputs
from modelbuild.recipe.schema import Recipe


def _recipe(inputs: dict) -> Recipe:
    return Recipe.model_validate({"name": "r", "model": {"factory": "m:f"}, "inputs": inputs, "outputs": {"y": {}}})


def test_each_dtype_gets_values_of_its_kind_in_its_range():
    recipe = _recipe({"ids": {"shape": [2, 500], "dtype": "int64", "range": [0, 9]},
                      "mask": {"shape": [2, 500], "dtype": "bool"},
                      "x": {"shape": [2, 500], "dtype": "float16", "range": [-1, 1]},
                      "sigma": {"shape": [1], "example": 0.5}})
    feeds = generated_inputs(recipe, seed=3)
    assert {name: value.dtype.name for name, value in feeds.items()} == {
        "ids": "int64", "mask": "bool", "x": "float16", "sigma": "float32"}
    assert set(np.unique(feeds["ids"])) == set(range(10))  # 0 and 9 included
    assert set(np.unique(feeds["mask"])) == {False, True}
    assert -1 <= feeds["x"].min() and feeds["x"].max() <= 1 and feeds["x"].std() > 0.3
    assert feeds["sigma"].tolist() == [0.5]


def test_values_are_seeded():
    recipe = _recipe({"ids": {"shape": [1, 16], "dtype": "int32", "range": [0, 1000]}})
    assert np.array_equal(generated_inputs(recipe, 1)["ids"], generated_inputs(recipe, 1)["ids"])
    assert not np.array_equal(generated_inputs(recipe, 1)["ids"], generated_inputs(recipe, 2)["ids"])


def test_an_integer_example_fills_the_input():
    feeds = generated_inputs(_recipe({"mask": {"shape": [1, 4], "dtype": "int64", "example": 1}}))
    assert feeds["mask"].tolist() == [[1, 1, 1, 1]] and feeds["mask"].dtype == np.int64

