"""Incremental builds, running doit for real on a tiny project: what re-runs after which edit."""
from __future__ import annotations

from pathlib import Path

import pytest
from projects import doit, edit_recipe, run_doit, write_tiny_weights

pytestmark = pytest.mark.slow

ALL = ["coreml:tiny.viaonnx", "coreml:tiny.viatorch", "onnx:tiny", "validate:tiny"]


@pytest.fixture
def built(tiny_project, monkeypatch):
    code, executed = run_doit(tiny_project, monkeypatch)
    assert code == 0 and executed == ALL
    return tiny_project


def test_second_build_executes_nothing(built, monkeypatch):
    assert run_doit(built, monkeypatch) == (0, [])


def test_variant_edit_reruns_that_variant_only_and_says_why(built, monkeypatch, capfd):
    capfd.readouterr()
    edit_recipe(built, lambda d: d["coreml"]["viatorch"].update(minimum_deployment_target="iOS14"))
    assert run_doit(built, monkeypatch) == (0, ["coreml:tiny.viatorch", "validate:tiny"])
    assert "why: coreml.viatorch.minimum_deployment_target changed" in capfd.readouterr().out


def test_opset_edit_reruns_onnx_and_the_onnx_fed_variant(built, monkeypatch):
    edit_recipe(built, lambda d: d["onnx"].update(opset=13))
    assert run_doit(built, monkeypatch) == (0, ["coreml:tiny.viaonnx", "onnx:tiny", "validate:tiny"])


def test_weights_edit_reruns_everything(built, monkeypatch, capfd):
    capfd.readouterr()
    write_tiny_weights(built / "weights" / "tiny.pth", seed=1)
    assert run_doit(built, monkeypatch) == (0, ALL)
    assert "why: an input file changed" in capfd.readouterr().out


def test_tolerance_edit_reruns_validation_only(built, monkeypatch):
    edit_recipe(built, lambda d: d.setdefault("validate", {}).update(tolerances={"onnx": {"max_abs": 1e-3}}))
    assert run_doit(built, monkeypatch) == (0, ["validate:tiny"])


def test_byte_identical_onnx_reexport_skips_coreml(built, monkeypatch):
    onnx_file = built / "artifacts" / "tiny" / "tiny.onnx"
    before = onnx_file.read_bytes()
    edit_recipe(built, lambda d: d["onnx"].update(max_abs_error=1e-3))  # re-runs the export only
    assert run_doit(built, monkeypatch) == (0, ["onnx:tiny"])
    assert onnx_file.read_bytes() == before


def test_interrupted_conversion_leaves_the_old_artifact(built, monkeypatch):
    artifact = built / "artifacts" / "tiny" / "tiny_viatorch.mlmodel"
    before = artifact.read_bytes()
    from modelbuild.quiet import coremltools

    def interrupted(self, path, *args, **kwargs):  # Ctrl-C halfway through writing the file
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(coremltools().models.MLModel, "save", interrupted)
    edit_recipe(built, lambda d: d["coreml"]["viatorch"].update(minimum_deployment_target="iOS14"))
    with pytest.raises(KeyboardInterrupt):
        run_doit(built, monkeypatch)
    assert artifact.read_bytes() == before
    assert sorted(p.name for p in artifact.parent.iterdir() if p.name.startswith(".")) == [".records"]
    assert not [p for p in (artifact.parent / ".records").iterdir() if ".tmp-" in p.name]


def test_failed_stage_is_one_line_and_keeps_artifacts(built, monkeypatch, capfd):
    edit_recipe(built, lambda d: d["outputs"].update(extra={}))  # the model has one output, not two
    code, executed = run_doit(built, monkeypatch)
    assert code != 0 and executed == ALL  # every stage is tried; validation reports what failed
    out = capfd.readouterr()
    error = "OutputSelectionError: outputs: the model returns one tensor, the recipe names 2 outputs"
    assert f"FAILED: recipes/tiny.yaml: onnx: {error}" in out.out
    assert f"FAILED: recipes/tiny.yaml: coreml.viaonnx: not built because onnx failed: {error}" in out.out
    report = (built / "doit-report.txt").read_text()
    assert f"recipes/tiny.yaml: validate: {error}" in report  # no reference, nothing to compare
    assert "Traceback" not in report + out.err
    assert (built / "artifacts" / "tiny" / "tiny.onnx").is_file()


def test_public_stage_task_fails_when_its_stage_failed(built, monkeypatch, capfd):
    edit_recipe(built, lambda d: d["outputs"].update(extra={}))
    code, executed = run_doit(built, monkeypatch, "coreml:tiny.viatorch")
    assert code != 0 and executed == ["coreml:tiny.viatorch"]
    assert ("recipes/tiny.yaml: coreml.viatorch: OutputSelectionError: outputs: the model returns one tensor"
            in (built / "doit-report.txt").read_text())


def test_a_failed_variant_does_not_hide_the_others(built, monkeypatch):
    import json

    edit_recipe(built, lambda d: d["coreml"]["viatorch"].update(minimum_deployment_target="iOS14"))
    from modelbuild.stages import coreml_stage

    real = coreml_stage.build_coreml

    def broken(recipe, root, variant, *args):
        if variant == "viatorch":
            raise RuntimeError("converter exploded")
        return real(recipe, root, variant, *args)

    monkeypatch.setattr(coreml_stage, "build_coreml", broken)
    code, executed = run_doit(built, monkeypatch)
    assert code != 0 and executed == ["coreml:tiny.viatorch", "validate:tiny"]
    report = json.loads((built / "artifacts" / "tiny" / "report.json").read_text())
    verdicts = {(c["artifact"], c["passed"]) for c in report["comparisons"]}
    assert verdicts == {("onnx", True), ("viaonnx", True), ("viatorch", False)}
    assert [c["error"] for c in report["comparisons"] if c["artifact"] == "viatorch"] == [
        "not built: RuntimeError: converter exploded"]
    monkeypatch.undo()
    code, executed = run_doit(built, monkeypatch)  # the failed conversion is tried again
    assert code == 0 and executed == ["coreml:tiny.viatorch", "validate:tiny"]


def test_clean_removes_the_recipe_artifacts(built, monkeypatch):
    assert not doit(built, monkeypatch, "clean", "build:tiny")  # doit clean returns None on success
    assert not (built / "artifacts" / "tiny").exists()


def test_manifest_records_every_artifact_with_its_plain_sha256(built):
    import hashlib
    import json

    folder = built / "artifacts" / "tiny"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["recipe"] == "tiny"
    assert sorted(manifest["artifacts"]) == ["coreml.viaonnx", "coreml.viatorch", "onnx", "validate"]
    for entry in manifest["artifacts"].values():
        assert entry["sha256"] == hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest()  # as sha256sum
        assert "tools" in entry["fingerprint"] or "torch" in entry["fingerprint"]
        assert "stat" not in entry and "seconds" not in entry and "built_at" not in entry
    assert set(manifest["artifacts"]["validate"]["outputs"]) == {"report.md", "report.html"}
    timings = json.loads((folder / "timings.json").read_text())
    assert sorted(timings) == sorted(manifest["artifacts"]) and all(t["seconds"] >= 0 for t in timings.values())


def test_parallel_build_gives_the_serial_build_byte_for_byte(built, monkeypatch, tmp_path):
    import shutil
    import subprocess
    import sys

    serial = {p.name: p.read_bytes() for p in (built / "artifacts" / "tiny").iterdir() if p.is_file()}
    shutil.rmtree(built / "artifacts")
    for state in built.glob(".doit.db*"):
        state.unlink()
    # in a fresh process, as users run it: doit forks its workers, and a process that has imported torch
    # (this one) must not fork
    result = subprocess.run([sys.executable, "-m", "modelbuild", "build", "-n", "2", "build:tiny"], cwd=built,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    parallel = {p.name: p.read_bytes() for p in (built / "artifacts" / "tiny").iterdir() if p.is_file()}
    assert sorted(parallel) == sorted(serial)
    assert [name for name in serial if name != "timings.json" and parallel[name] != serial[name]] == []
