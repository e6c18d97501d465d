"""The `compression` section and from_variant variants: what loads, and each mistake's one-line error."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from modelbuild.recipe import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((REPO / "recipes" / "ffdnet.yaml").read_text())


def _load(tmp_path: Path, variants: dict) -> object:
    data = copy.deepcopy(SHIPPED)
    data["coreml"] = {**data["coreml"], **variants}
    data["validate"]["samples"] = [str(REPO / "samples" / "astronaut.png")]
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_recipe(path)


def _error(tmp_path: Path, variants: dict) -> str:
    with pytest.raises(RecipeError) as caught:
        _load(tmp_path, variants)
    message = str(caught.value)
    assert "\n" not in message, message
    return message.split(": ", 1)[1].split(": ", 1)[1]  # without "path:line: "


PROGRAM = {"frontend": "onnx", "format": "mlprogram", "file": "p.mlpackage"}


def test_shipped_compressed_variants():
    recipe = load_recipe(REPO / "recipes" / "ffdnet.yaml")
    int8 = recipe.coreml["multiarray_int8"]
    assert int8.from_variant == "multiarray"  # takes its source's conversion settings
    assert (int8.frontend, int8.format, int8.minimum_deployment_target) == ("onnx", "neuralnetwork", "iOS13")
    assert int8.compression.kind == "int8"
    assert recipe.coreml_file("multiarray_int8") == "FFDNet_int8.mlmodel"
    palettized = recipe.coreml["program_palette6"].compression
    assert palettized.kind == "6-bit palette (calibrated)" and palettized.calibrated


def test_joint_section_names_its_kind(tmp_path):
    recipe = _load(tmp_path, {"p": {**PROGRAM, "minimum_deployment_target": "iOS18", "compression": {
        "prune": {"sparsity": 0.5}, "palettize": {"nbits": 4}, "skip_op_types": ["linear"]}}})
    compression = recipe.coreml["p"].compression
    assert compression.kind == "50% sparse + 4-bit palette"
    assert [step.step for step in compression.weight_steps()] == ["coreml::prune", "coreml::palettize"]
    assert compression.weight_steps()[1].joint and compression.weight_steps()[1].skip_op_types == ["linear"]


@pytest.mark.parametrize("variants, expected", [
    ({"c": {"from_variant": "nope", "compression": {"quantize": {}}}},
     "c.from_variant names no variant ('nope'); expected a variant that is converted: multiarray, image"),
    ({"c": {"from_variant": "multiarray", "format": "mlprogram", "compression": {"quantize": {}}}},
     "a variant made from_variant 'multiarray' takes its conversion settings from that variant; remove format here "
     "(or set them there)"),
    ({"c": {"from_variant": "multiarray"}}, "a variant made from another needs compression (or surgery) to differ"),
    ({"c": {"file": "c.mlmodel", "compression": {"quantize": {}}}},
     "give frontend and format (how to convert), or from_variant"),
    ({"c": {"from_variant": "multiarray", "compression": {}}},
     "name at least one of quantize, palettize, prune or activations"),
    ({"c": {"from_variant": "multiarray", "compression": {"palettize": {"nbits": 5}}}},
     "Input should be 1, 2, 3, 4, 6 or 8, got 5"),
    ({"c": {"from_variant": "multiarray", "compression": {"quantize": {"dtype": "int2"}}}},
     "Input should be 'int8', 'uint8', 'int4' or 'uint4', got 'int2'"),
    ({"c": {"from_variant": "multiarray", "compression": {"prune": {"sparsity": 0.5, "n_m": [2, 4]}}}},
     "give exactly one of sparsity (e.g. 0.5) or n_m (e.g. [2, 4])"),
    ({"c": {"from_variant": "multiarray", "compression": {"prune": {"sparsity": 0.5}}}},
     "NeuralNetwork models have no sparse weights; coreml.multiarray converts to a NeuralNetwork: use format "
     "mlprogram there"),
    ({"c": {"from_variant": "multiarray", "compression": {"quantize": {"granularity": "per_block"}}}},
     "NeuralNetwork weights are quantized per output channel only, not per_block"),
    ({"p": {**PROGRAM, "compression": {"quantize": {"dtype": "int4"}}}},
     "int4 weights needs an ML Program for iOS18 (macOS15) or later, and coreml.p converts for iOS15: set "
     "coreml.p.minimum_deployment_target accordingly"),
    ({"p": {**PROGRAM, "minimum_deployment_target": "iOS18",
            "compression": {"palettize": {"nbits": 4}, "quantize": {}}}},
     "quantizing a palette takes quantize.granularity per_tensor"),
    ({"p": {**PROGRAM, "minimum_deployment_target": "iOS17", "compression": {"activations": {}}}},
     "coremltools quantizes the activations of a float16 ML Program only, and coreml.p converts in float32: set "
     "coreml.p.compute_precision float16"),
    ({"p": {**PROGRAM, "compute_precision": "float16", "compression": {"activations": {}}}},
     "activation quantization needs an ML Program for iOS17 (macOS14) or later"),
])
def test_compression_mistakes(tmp_path, variants, expected):
    assert expected in _error(tmp_path, variants)
