"""Tampered artifacts of every kind are detected and rebuilt by the next build, byte-identical."""
from __future__ import annotations

import json
import os
import shutil

import pytest
from projects import edit_recipe, run_doit

from modelbuild.hashing import artifact_sha256

pytestmark = pytest.mark.slow

FILES = {"onnx": "tiny.onnx", "mlmodel": "tiny_viaonnx.mlmodel", "mlpackage": "tiny_prog.mlpackage",
         "report": "report.json", "html": "report.html", "manifest": "manifest.json"}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A tiny project built once: a NeuralNetwork from ONNX, one from torch, an ML Program."""
    from projects import make_tiny_project

    root = make_tiny_project(tmp_path_factory.mktemp("template"))
    edit_recipe(root, lambda d: d["coreml"].update(prog={"frontend": "torch", "format": "mlprogram"}))
    monkeypatch = pytest.MonkeyPatch()
    try:
        code, executed = run_doit(root, monkeypatch)
    finally:
        monkeypatch.undo()
    assert code == 0
    return root


@pytest.fixture
def project(template, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    return root


def _digests(root):
    folder = root / "artifacts" / "tiny"
    return {kind: artifact_sha256(folder / name) for kind, name in FILES.items() if kind != "manifest"}


def _flip_keeping_mtime(path):
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _target(root, kind):
    path = root / "artifacts" / "tiny" / FILES[kind]
    return path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin" if kind == "mlpackage" else path


def test_a_copied_project_builds_nothing(project, monkeypatch):
    assert run_doit(project, monkeypatch) == (0, [])  # new inode times: hashed once, found intact


@pytest.mark.parametrize("kind, stage", [("onnx", "onnx:tiny"), ("mlmodel", "coreml:tiny.viaonnx"),
                                         ("mlpackage", "coreml:tiny.prog"), ("report", "validate:tiny"),
                                         ("html", "validate:tiny")])
@pytest.mark.parametrize("tamper", [_truncate, _flip_keeping_mtime, lambda path: path.unlink()],
                         ids=["truncated", "flipped-same-mtime", "deleted"])
def test_tampered_output_is_rebuilt_identically(project, monkeypatch, capfd, kind, stage, tamper):
    before = _digests(project)
    tamper(_target(project, kind))
    capfd.readouterr()
    code, executed = run_doit(project, monkeypatch)
    assert code == 0 and stage in executed
    reason = "is missing" if tamper.__name__ == "<lambda>" and kind != "mlpackage" else "changed since it was built"
    assert reason in capfd.readouterr().out
    assert _digests(project) == before


@pytest.mark.parametrize("damage", ["corrupt", "deleted", "timings deleted"])
def test_manifest_is_rebuilt_from_the_records(project, monkeypatch, damage):
    folder = project / "artifacts" / "tiny"
    before = (folder / "manifest.json").read_text()
    if damage == "corrupt":
        (folder / "manifest.json").write_text('{"recipe": "tiny", "artifacts": {')
    elif damage == "deleted":
        (folder / "manifest.json").unlink()
    else:
        (folder / "timings.json").unlink()
    code, executed = run_doit(project, monkeypatch)
    assert code == 0 and executed == []  # nothing rebuilt, only the manifest rewritten
    assert (folder / "manifest.json").read_text() == before
    assert set(json.loads((folder / "timings.json").read_text())) == set(json.loads(before)["artifacts"])


def test_lost_records_rebuild_everything(project, monkeypatch):
    before = _digests(project)
    shutil.rmtree(project / "artifacts" / "tiny" / ".records")
    code, executed = run_doit(project, monkeypatch)
    assert code == 0 and "onnx:tiny" in executed and "validate:tiny" in executed
    assert _digests(project) == before


def test_validation_hashes_what_it_judges(project, monkeypatch):
    """An edit that fooled the stat cache too (same size, times restored by hand in the cache) is caught by
    the next validation, reported, and rebuilt by the build after."""
    from modelbuild import verify
    from modelbuild.stage_records import stat_cache_file

    folder = project / "artifacts" / "tiny"
    onnx = folder / "tiny.onnx"
    _flip_keeping_mtime(onnx)
    verify.StatCache(stat_cache_file(folder, "onnx")).remember([onnx])  # the cheap check now believes it
    edit_recipe(project, lambda d: d.setdefault("validate", {}).update(random_samples=2))  # re-runs validation
    code, _ = run_doit(project, monkeypatch)
    report = json.loads((folder / "report.json").read_text())
    errors = [c["error"] for c in report["comparisons"] if c["artifact"] == "onnx"]
    assert code != 0 and errors == ["not built: tiny.onnx changed since it was built (its content differs from "
                                    "the record); the next build rebuilds it"]
    code, executed = run_doit(project, monkeypatch)
    assert code == 0 and "onnx:tiny" in executed
