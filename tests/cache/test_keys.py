"""Cache keys: the same in every clone of a project, different when anything the stage reads differs."""
from __future__ import annotations

import textwrap

import pytest
from projects import edit_recipe, make_tiny_project, write_tiny_weights

from modelbuild import manifest, tasks
from modelbuild.cache import keys
from modelbuild.stage_run import run_stage


def _key(root, stage: str = "onnx") -> str | None:
    """The key of the tiny recipe's stage, from the fingerprint and inputs its task hands to run_stage."""
    tasks.forget_project()
    arguments = next(action[1] for dicts in tasks.project_tasks(root).values() for task in dicts
                     for action in task.get("actions") or []
                     if action[0] is run_stage and action[1][0].name == "tiny" and action[1][1] == stage)
    item, key, _, _, _, stage_fingerprint, inputs = arguments[:7]
    return keys.stage_key(item, key, stage_fingerprint, inputs)


def _mkdirs(*paths):
    for path in paths:
        path.mkdir(parents=True)


def test_every_clone_computes_the_same_key(tmp_path):
    _mkdirs(tmp_path / "a" / "deep", tmp_path / "b")
    first, second = make_tiny_project(tmp_path / "a" / "deep"), make_tiny_project(tmp_path / "b")
    assert _key(first) == _key(second) and len(_key(first)) == 64


def test_what_the_stage_reads_changes_the_key_and_nothing_else_does(tiny_project):
    before = _key(tiny_project)
    edit_recipe(tiny_project, lambda d: d.setdefault("validate", {}).update(random_samples=2))  # validation only
    assert _key(tiny_project) == before
    edit_recipe(tiny_project, lambda d: d["onnx"].update(opset=13))
    after_opset = _key(tiny_project)
    assert after_opset != before
    write_tiny_weights(tiny_project / "weights" / "tiny.pth", seed=1)
    assert _key(tiny_project) not in (before, after_opset)


def test_upstream_artifacts_are_part_of_the_key(tiny_project):
    assert _key(tiny_project, "coreml.viaonnx") is None  # the ONNX file it converts is not built
    artifact_dir = tiny_project / "artifacts" / "tiny"
    manifest.write_record(artifact_dir, "tiny", "onnx", {"outcome": "built", "sha256": "1" * 64})
    with_one = _key(tiny_project, "coreml.viaonnx")
    manifest.write_record(artifact_dir, "tiny", "onnx", {"outcome": "built", "sha256": "2" * 64})
    assert _key(tiny_project, "coreml.viaonnx") not in (None, with_one)
    assert _key(tiny_project, "coreml.viatorch") is not None  # the torch frontend reads no artifact
    assert _key(tiny_project, "validate") is None  # validation reads every artifact, and only one is built


MODEL = textwrap.dedent("""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x, sigma):
            return self.conv(x)
""")


def test_a_workers_mirror_computes_the_projects_keys(tmp_path, monkeypatch):
    """A cluster worker builds in a folder of symlinks to the project (modelbuild.cluster): the model's source,
    resolved through the symlinks, is still a file of the project."""
    root = tmp_path / "project"
    _mkdirs(root / "models")
    make_tiny_project(root)
    (root / "models" / "net.py").write_text(MODEL)
    edit_recipe(root, lambda d: d["model"].update(factory="models.net:Net", weights=None))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for entry in root.iterdir():
        (mirror / entry.name).symlink_to(entry)
    monkeypatch.syspath_prepend(str(root))
    original = _key(root)
    monkeypatch.syspath_prepend(str(mirror))
    assert _key(mirror) != original  # the source resolves outside the mirror: known only by its file name
    monkeypatch.setenv(keys.ORIGIN_VARIABLE, str(root))
    assert _key(mirror) == original
