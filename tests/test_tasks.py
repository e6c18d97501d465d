"""Task generation, tested on the task dicts without running doit."""
from __future__ import annotations

import subprocess
import sys

import pytest
from projects import REPO, edit_recipe

from modelbuild import fingerprint, tasks
from modelbuild.recipe import load_recipe
from modelbuild.stage_run import verdict


def _project(root):
    tasks.forget_project()
    return {item.name: item for item in tasks.load_project(root)}


def test_task_names_and_groups(tiny_project):
    item = _project(tiny_project)["tiny"]
    assert tasks.onnx_task(item)["name"] == "tiny"
    assert [tasks.coreml_task(item, v)["name"] for v in item.recipe.coreml] == ["tiny.viaonnx", "tiny.viatorch"]
    build = tasks.build_task(item)
    assert build["task_dep"] == ["_onnx:tiny", "_coreml:tiny.viaonnx", "_coreml:tiny.viatorch", "validate:tiny",
                                 "_manifest:tiny"]


def _upstream(task) -> list[str]:
    """The stage tasks whose results a task's uptodate check compares."""
    return [name for check in task["uptodate"] for name in check.upstream]


def test_public_stage_tasks_run_the_stage_then_its_verdict(tiny_project):
    item = _project(tiny_project)["tiny"]
    onnx = tasks.public_task(item, tasks.onnx_task(item), "onnx")
    assert (onnx["name"], onnx["task_dep"], onnx["uptodate"]) == ("tiny", ["_onnx:tiny"], [False])
    assert onnx["actions"] == [(verdict, [item, "onnx"])]
    coreml = tasks.public_task(item, tasks.coreml_task(item, "viaonnx"), "coreml.viaonnx")
    assert coreml["task_dep"] == ["_coreml:tiny.viaonnx"]
    assert coreml["actions"] == [(verdict, [item, "coreml.viaonnx"])]


def test_file_dependencies(tiny_project):
    item = _project(tiny_project)["tiny"]
    weights = "weights/tiny.pth"  # paths in the project are relative: a moved checkout keeps its build state
    source = str(REPO / "modelbuild" / "zoo" / "ffdnet.py")
    onnx = tasks.onnx_task(item)
    assert sorted(onnx["file_dep"]) == sorted([weights, source])
    assert onnx["targets"] == ["artifacts/tiny/tiny.onnx"]
    via_onnx = tasks.coreml_task(item, "viaonnx")
    assert via_onnx["file_dep"] == []  # the ONNX file's outcome (its sha256) is a result dependency instead
    assert _upstream(via_onnx) == ["_onnx:tiny"]
    assert sorted(tasks.coreml_task(item, "viatorch")["file_dep"]) == sorted([weights, source])


def test_validation_depends_on_every_artifact_stage_and_sample(tiny_project):
    edit_recipe(tiny_project, lambda d: d.setdefault("validate", {}).update(samples=["sample.png"]))
    (tiny_project / "sample.png").write_bytes(b"")
    item = _project(tiny_project)["tiny"]
    artifacts = tiny_project / "artifacts" / "tiny"
    task = tasks.validate_task(item)
    assert set(task["file_dep"]) >= {"sample.png", "weights/tiny.pth"}
    assert _upstream(task) == [
        "_onnx:tiny", "_coreml:tiny.viaonnx", "_coreml:tiny.viatorch"]
    assert task["targets"] == [f"artifacts/tiny/{name}" for name in ("report.json", "report.md", "report.html")]


def test_mlpackage_target_is_a_digest_file(tiny_project):
    edit_recipe(tiny_project, lambda d: d["coreml"].update(prog={"frontend": "torch", "format": "mlprogram"}))
    item = _project(tiny_project)["tiny"]
    assert tasks.coreml_task(item, "prog")["targets"] == ["artifacts/tiny/tiny_prog.mlpackage.sha256"]


def _fingerprints(root):
    recipe = load_recipe(root / "recipes" / "tiny.yaml")
    return {"onnx": fingerprint.onnx_fingerprint(recipe),
            **{v: fingerprint.coreml_fingerprint(recipe, v) for v in recipe.coreml}}


def _changed(root, edit):
    before = _fingerprints(root)
    edit_recipe(root, edit)
    after = _fingerprints(root)
    return sorted(key for key in before if before[key] != after[key])


def test_variant_field_changes_only_that_variant(tiny_project):
    assert _changed(tiny_project, lambda d: d["coreml"]["viaonnx"].update(minimum_deployment_target="iOS14")) == [
        "viaonnx"]


def test_opset_changes_only_the_onnx_stage_fingerprint(tiny_project):
    # ONNX-fed variants then re-run through their file dependency on the ONNX file.
    assert _changed(tiny_project, lambda d: d["onnx"].update(opset=16)) == ["onnx"]


def test_model_change_reaches_onnx_and_torch_variants(tiny_project):
    assert _changed(tiny_project, lambda d: d["model"].update(seed=3)) == ["onnx", "viatorch"]


def test_interface_change_reaches_every_stage(tiny_project):
    assert _changed(tiny_project, lambda d: d["outputs"]["y"].update(description="denoised")) == [
        "onnx", "viaonnx", "viatorch"]


def test_fingerprint_holds_tool_versions(tiny_project):
    prints = _fingerprints(tiny_project)
    assert prints["onnx"]["torch"] == fingerprint.tool_version("torch")
    assert set(prints["viaonnx"]["tools"]) == {"coremltools", "onnx2coreml"}
    assert set(prints["viatorch"]["tools"]) == {"coremltools", "torch"}


def test_broken_recipe_gives_a_failing_build_task(tiny_project):
    (tiny_project / "recipes" / "broken.yaml").write_text("name: broken\n")
    items = _project(tiny_project)
    task = tasks.build_task(items["broken"])
    failure = task["actions"][0]()
    assert "broken.yaml:1: model: required field is missing" in str(failure)
    assert "tiny" in items and items["tiny"].recipe is not None


def test_duplicate_recipe_names_are_refused(tiny_project):
    (tiny_project / "recipes" / "zzz.yaml").write_text((tiny_project / "recipes" / "tiny.yaml").read_text())
    errors = [str(item.error) for item in _project(tiny_project).values() if item.error]
    assert errors == ["recipes/zzz.yaml:1: name: 'tiny' is also the name of recipes/tiny.yaml; "
                      "recipe names must be unique"]


def test_dodo_does_not_import_heavy_tools():
    code = ("import sys; sys.path.insert(0, '.'); import dodo; "
            "print([m for m in ('torch', 'onnx', 'onnxruntime', 'coremltools', 'onnx2coreml') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_making_the_shipped_recipes_tasks_imports_no_heavy_tool():
    """What a no-op `doit build` does: load every recipe and make its task dicts, without numpy or the converters."""
    code = ("import sys; sys.path.insert(0, '.'); import dodo; from pathlib import Path; "
            "from modelbuild.tasks import project_tasks; made = project_tasks(Path('.')); assert made['build'], made; "
            "print([m for m in ('torch', 'onnx', 'onnxruntime', 'coremltools', 'onnx2coreml', 'numpy', 'PIL') "
            "if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("creator", ["task_onnx", "task__onnx", "task_coreml", "task__coreml", "task_build"])
def test_creators_yield_the_shipped_recipes(creator, monkeypatch):
    monkeypatch.chdir(REPO)
    tasks.forget_project()
    names = [task["name"] for task in getattr(tasks, creator)()]
    assert any(name.startswith("ffdnet") for name in names)


def test_classifier_labels_are_dependencies(tmp_path):
    from projects import make_classifier_project

    root = make_classifier_project(tmp_path)
    item = _project(root)["clf"]
    labels = "labels.txt"
    assert labels in tasks.coreml_task(item, "nn")["file_dep"]
    assert labels in tasks.validate_task(item)["file_dep"]
    assert labels in tasks.agreement_task(item, {"clf": item.recipe})["file_dep"]
    assert labels not in tasks.onnx_task(item)["file_dep"]


def test_stage_fingerprints_are_the_same_in_every_clone(tmp_path):
    """A clone elsewhere has the same fingerprints (they go into manifest.json): no absolute paths in them."""
    import shutil

    from modelbuild.stage_run import run_stage

    fingerprints = []
    for root in (tmp_path / "a", tmp_path / "deeper" / "b"):
        (root / "recipes").mkdir(parents=True)
        shutil.copy(REPO / "recipes" / "resnet50.yaml", root / "recipes")  # an agreement matrix of artifact files
        shutil.copytree(REPO / "samples", root / "samples")
        tasks.forget_project()
        fingerprints.append({task["name"]: action[1][5] for dicts in tasks.project_tasks(root).values() for task in dicts
                             for action in task.get("actions") or [] if action[0] is run_stage})
    assert "resnet50" in fingerprints[0] and "resnet50.torch_nn" in fingerprints[0]
    assert fingerprints[0] == fingerprints[1]


def test_a_recipe_whose_tasks_cannot_be_made_fails_alone(tiny_project, monkeypatch):
    (tiny_project / "recipes" / "other.yaml").write_text((tiny_project / "recipes" / "tiny.yaml").read_text()
                                                         .replace("name: tiny", "name: other"))
    real = tasks.validate_task

    def broken(item):
        if item.name == "other":
            raise AttributeError("'NoneType' object has no attribute 'get'")
        return real(item)

    monkeypatch.setattr(tasks, "validate_task", broken)
    tasks.forget_project()
    made = tasks.project_tasks(tiny_project)
    assert [t["name"] for t in made["validate"]] == ["tiny"]
    build = {t["name"]: t for t in made["build"]}
    failure = build["other"]["actions"][0]()
    assert failure.get_msg().strip() == ("recipes/other.yaml: cannot make its tasks (AttributeError: 'NoneType' object has no "
                            "attribute 'get'); this is a modelbuild bug, please report it")
    assert build["tiny"]["task_dep"][-2:] == ["validate:tiny", "_manifest:tiny"]


def test_a_broken_recipe_file_leaves_the_others_listed(tiny_project):
    (tiny_project / "recipes" / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tiny_project / "recipes" / "bomb.yaml").write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{k}: &{k} [{', '.join([f'*{p}'] * 10)}]\n" for p, k in zip("abcdefg", "bcdefgh")))
    tasks.forget_project()
    made = tasks.project_tasks(tiny_project)
    assert [t["name"] for t in made["_onnx"]] == ["tiny"]
    assert sorted(t["name"] for t in made["build"]) == ["bomb", "latin", "tiny"]
