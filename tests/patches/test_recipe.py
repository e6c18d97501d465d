"""Patches in recipes: loader checks, fingerprints, and the files the build tasks depend on."""
from __future__ import annotations

import pytest
from projects import edit_recipe, make_tiny_project

from modelbuild import fingerprint, tasks
from modelbuild.recipe import RecipeError, load_recipe
from patches.helpers import SAMPLES

REPLACE = {"step": "torch::replace_modules", "type": "torch.nn:ReLU", "factory": "torch.nn:LeakyReLU"}
CALIBRATE = {"step": "torch::calibrate"}


def tiny(tmp_path, edit=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = make_tiny_project(tmp_path)
    if edit is not None:
        edit_recipe(root, edit)
    return root


def recipe_errors(root) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(root / "recipes" / "tiny.yaml")
    return [line.split(":", 1)[1] for line in caught.value.lines]  # without the file name


def patched(*patches, weights=True, samples=None, random_samples=None):
    def edit(data):
        data["model"]["patches"] = list(patches)
        if not weights:
            del data["model"]["weights"]
        if samples is not None or random_samples is not None:
            data["validate"] = {k: v for k, v in (("samples", samples), ("random_samples", random_samples))
                                if v is not None}
    return edit


def test_references_and_selections_are_checked_when_the_recipe_loads(tmp_path):
    root = tiny(tmp_path, patched({**REPLACE, "type": "torch.nn.ReLU"}, {**REPLACE, "factory": "LeakyReLU"},
                                  {"step": "torch::set_attribute", "attribute": "inplace", "value": True},
                                  {"step": "torch::set_attribute", "attribute": "in place", "value": 1,
                                   "type": "torch.nn:ReLU"}))
    assert recipe_errors(root) == [
        "13: model.patches.0.type: expected 'package.module:attr' (e.g. 'torch.nn:Hardswish'), "
        "got 'torch.nn.ReLU'",
        "17: model.patches.1.factory: expected 'package.module:attr' (e.g. "
        "'torch.nn:Hardswish'), got 'LeakyReLU'",
        "18: model.patches.2: give names (globs on module names), type (a module class) or both",
        "22: model.patches.3.attribute: expected an attribute name such as 'align_corners', "
        "got 'in place'",
    ]


def test_calibrate_refuses_trained_weights_and_a_recipe_without_samples(tmp_path):
    root = tiny(tmp_path / "weights", patched(CALIBRATE))
    assert recipe_errors(root) == [
        "12: model.patches.0: torch::calibrate re-estimates statistics and redraws weights of an untrained model; "
        "it would overwrite the trained ones of model.weights (remove one of the two)"]
    root = tiny(tmp_path / "samples", patched(CALIBRATE, weights=False, random_samples=0))
    assert recipe_errors(root) == [
        "10: model.patches.0: torch::calibrate estimates statistics from the validation samples, but validate has no "
        "samples and random_samples is 0 (give samples, random_samples >= 1, or statistics: false)"]
    root = tiny(tmp_path / "no-statistics", patched({**CALIBRATE, "statistics": False}, weights=False,
                                                    random_samples=0))
    assert load_recipe(root / "recipes" / "tiny.yaml").model.patches[0].statistics is False


def test_an_onnx_source_has_no_model_to_patch(tmp_path):
    def edit(data):
        data["model"] = {"onnx": "model.onnx", "patches": [REPLACE]}
        data["coreml"] = {"viaonnx": data["coreml"]["viaonnx"]}

    root = tiny(tmp_path, edit)
    (root / "model.onnx").write_bytes(b"")
    assert recipe_errors(root) == [
        "5: model.patches: model patches edit a PyTorch model; an ONNX source has none (use onnx.surgery)"]


def test_patches_are_part_of_every_model_building_stage_fingerprint(tmp_path):
    plain = load_recipe(tiny(tmp_path / "plain") / "recipes" / "tiny.yaml")
    root = tiny(tmp_path / "patched", patched(REPLACE))
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    for stage in (fingerprint.onnx_fingerprint, fingerprint.validation_fingerprint,
                  lambda r: fingerprint.coreml_fingerprint(r, "viatorch")):
        assert fingerprint.changed_fields(stage(plain), stage(recipe)) == ["model.patches"]
    assert fingerprint.coreml_fingerprint(plain, "viaonnx") == fingerprint.coreml_fingerprint(recipe, "viaonnx")
    edit_recipe(root, lambda data: data["model"]["patches"][0].update(args={"negative_slope": 0.2}))
    changed = load_recipe(root / "recipes" / "tiny.yaml")
    assert fingerprint.changed_fields(fingerprint.onnx_fingerprint(recipe), fingerprint.onnx_fingerprint(changed)) \
        == ["model.patches"]


def test_what_calibrate_reads_joins_the_fingerprint_and_the_file_dependencies(tmp_path):
    root = tiny(tmp_path, patched(CALIBRATE, weights=False, samples=SAMPLES[:2]))
    for sample in SAMPLES[:2]:
        (root / sample).parent.mkdir(exist_ok=True)
        (root / sample).write_bytes(b"not read here")
    item = tasks.Loaded.of(load_recipe(root / "recipes" / "tiny.yaml"), root)
    samples = list(SAMPLES[:2])  # project-relative, as doit records them
    assert tasks.model_file_deps(item)[-2:] == samples
    for task in (tasks.onnx_task(item), tasks.coreml_task(item, "viatorch"), tasks.validate_task(item)):
        assert set(samples) <= set(task["file_dep"]), task["name"]
    assert not set(samples) & set(tasks.coreml_task(item, "viaonnx")["file_dep"])

    edit_recipe(root, lambda data: data["validate"].update(random_samples=3))
    more = tasks.Loaded.of(load_recipe(root / "recipes" / "tiny.yaml"), root)
    changed = fingerprint.changed_fields(fingerprint.onnx_fingerprint(item.recipe),
                                         fingerprint.onnx_fingerprint(more.recipe))
    assert changed == ["patch_reads.validate.random_samples"]
    plain = load_recipe(tiny(tmp_path / "plain", patched(REPLACE)) / "recipes" / "tiny.yaml")
    assert "patch_reads" not in fingerprint.onnx_fingerprint(plain)
    assert tasks.model_file_deps(tasks.Loaded.of(plain, tmp_path / "plain"))[-1] == "weights/tiny.pth"


def test_build_model_patches_the_loaded_model_inside_normalize(tmp_path):
    import torch

    from modelbuild.torch_model import build_model

    def edit(data):
        data["model"]["normalize"] = {"mean": [0.5], "std": [0.25]}
        data["model"]["patches"] = [{"step": "torch::replace_modules", "type": "torch.nn:Conv2d", "names": ["body.0"],
                                     "factory": "torch.nn:Conv2d", "args": {"in_channels": 5, "out_channels": 4,
                                                                            "kernel_size": 3, "padding": 1}}]

    root = tiny(tmp_path, edit)
    loaded = torch.load(root / "weights" / "tiny.pth", weights_only=True)
    model = build_model(load_recipe(root / "recipes" / "tiny.yaml"), root)
    assert type(model).__name__ == "Normalized" and not model.training
    state = model.model.state_dict()
    assert not torch.equal(state["body.0.weight"], loaded["body.0.weight"])  # replaced after the weights were loaded
    assert all(torch.equal(state[key], value) for key, value in loaded.items() if not key.startswith("body.0."))
