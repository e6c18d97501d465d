"""Recipes that used to crash, hang or mislead the loader: each costs exactly one clean line."""
from __future__ import annotations

import time

import pytest

from modelbuild.recipe import RecipeError, load_recipe
from modelbuild.recipe.loader import MAX_LINE
from modelbuild.recipe.yaml_lines import MAX_VALUES

GOOD = """\
name: x
model: {factory: "mypkg.models:Net"}
inputs:
  image: {shape: [1, 3, 8, 8]}
outputs:
  y: {}
"""


def _error(tmp_path, data: bytes | str) -> str:
    path = tmp_path / "recipes" / "x.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert all(len(line) <= MAX_LINE and "\n" not in line for line in caught.value.lines)
    return str(caught.value).replace(str(path), "X")


def test_latin1_bytes_name_the_line(tmp_path):
    assert _error(tmp_path, GOOD.replace("name: x", "name: x\ndescription: caf\xe9").encode("latin-1")) == (
        "X:2: the recipe is not UTF-8 text (byte 0xe9); save it as UTF-8")


def test_alias_bomb_is_refused_at_once(tmp_path):
    bomb = "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
                   for p, k in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi"))
    started = time.perf_counter()
    assert _error(tmp_path, bomb) == f"X:1: the recipe expands to more than {MAX_VALUES} values (through YAML aliases?)"
    assert time.perf_counter() - started < 1


def test_deep_nesting_and_tags_and_merge_keys(tmp_path):
    assert "nest" in _error(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert _error(tmp_path, GOOD + "extra: !!binary aGVsbG8=\n") == (
        "X:7: tag !!binary is not supported; recipes hold plain strings, numbers, booleans and null")
    assert _error(tmp_path, GOOD + "extra: !!python/object:os.system {}\n") == (
        "X:7: tag !!python/object:os.system is not supported; write a mapping without it")
    assert _error(tmp_path, "base: &b {shape: [1]}\n" + GOOD.replace("  y: {}", "  y: {<<: *b}")) == (
        "X:7: outputs.y: merge keys (<<) are not supported in recipes; write the keys out")


def test_control_characters(tmp_path):
    assert _error(tmp_path, GOOD.replace("name: x", "name: x\x07")) == (
        "X:1: invalid YAML: character U+0007 is not allowed in a recipe")


def test_numbers_must_be_finite_and_shapes_bounded(tmp_path):
    assert _error(tmp_path, GOOD.replace("{shape: [1, 3, 8, 8]}", "{shape: [1, 3, 8, 8], range: [0, .inf]}")) == (
        "X:4: inputs.image.range.1: Input should be a finite number, got inf")
    message = _error(tmp_path, GOOD.replace("[1, 3, 8, 8]", "[1, 3, 20000, 20000]"))
    assert message.startswith("X:4: inputs.image.shape: [1, 3, 20000, 20000] has 1,200,000,000 elements, more than "
                              "134,217,728: every build stage holds such an input")
    assert "MODELBUILD_MAX_INPUT_ELEMENTS" in message
    assert "Core ML's limit" in _error(tmp_path, GOOD.replace("[1, 3, 8, 8]", "[1, 1000000000000000000000000000000]"))


def test_the_element_ceiling_can_be_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELBUILD_MAX_INPUT_ELEMENTS", str(2**31))
    assert "no package 'mypkg'" in _error(tmp_path, GOOD.replace("[1, 3, 8, 8]", "[1, 3, 20000, 20000]"))


def test_factories_are_module_attr_exactly_and_not_the_standard_library(tmp_path):
    assert _error(tmp_path, GOOD.replace('"mypkg.models:Net"', '"os:system"')) == (
        "X:2: model.factory: 'os:system' is in Python's standard library, which builds no models; expected "
        "'package.module:attr' (e.g. 'modelbuild.zoo.ffdnet:FFDNet')")
    assert _error(tmp_path, GOOD.replace('"mypkg.models:Net"', '"mypkg.models:Net\\n"')) == (
        "X:2: model.factory: expected 'package.module:attr' (e.g. 'modelbuild.zoo.ffdnet:FFDNet'), "
        "got 'mypkg.models:Net\\n'")


def test_file_names_are_plain(tmp_path):
    assert _error(tmp_path, GOOD + "onnx: {file: \"a\\nb.onnx\"}\n") == (
        "X:7: onnx.file: expected a plain file name ending in .onnx (letters, digits, _ . + -; no folder), "
        "got 'a\\nb.onnx'")


def test_a_huge_value_is_shortened(tmp_path):
    message = _error(tmp_path, GOOD.replace("name: x", "name: " + "x" * 500_000))
    assert message.startswith("X:1: name: String should have at most 100 characters, got 'xxxx")
    assert len(message) < 200


def test_over_long_sample_path(tmp_path):
    assert _error(tmp_path, GOOD + f"validate: {{samples: [{'a' * 5000}.png]}}\n").startswith(
        "X:7: validate.samples.0: not a usable path (OSError): 'aaaa")
