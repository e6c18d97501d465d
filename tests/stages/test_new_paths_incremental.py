"""What re-runs when onnx.exporter or a variant's capture changes: on the fingerprints, then with doit for real."""
from __future__ import annotations

import pytest
from projects import edit_recipe, run_doit

from modelbuild import fingerprint
from modelbuild.recipe import load_recipe


def _changed_fingerprints(root, edit) -> list[str]:
    def prints():
        recipe = load_recipe(root / "recipes" / "tiny.yaml")
        return {"onnx": fingerprint.onnx_fingerprint(recipe), "validate": fingerprint.validation_fingerprint(recipe),
                **{v: fingerprint.coreml_fingerprint(recipe, v) for v in recipe.coreml}}

    before = prints()
    edit_recipe(root, edit)
    after = prints()
    return sorted(key for key in before if before[key] != after[key])


def test_exporter_is_read_by_the_onnx_stage_only(tiny_project):
    # The variant fed by the ONNX file re-runs through its file dependency when the bytes change.
    assert _changed_fingerprints(tiny_project, lambda d: d["onnx"].update(exporter="dynamo")) == ["onnx"]


def test_capture_is_read_by_its_variant_and_validation(tiny_project):
    assert _changed_fingerprints(tiny_project, lambda d: d["coreml"]["viatorch"].update(capture="export")) == [
        "validate", "viatorch"]


@pytest.mark.slow
def test_switching_paths_reruns_what_reads_them_and_rebuilds_nothing_twice(tiny_project, monkeypatch, capfd):
    root = tiny_project
    assert run_doit(root, monkeypatch)[0] == 0
    capfd.readouterr()

    edit_recipe(root, lambda d: d["onnx"].update(exporter="dynamo"))
    assert run_doit(root, monkeypatch) == (0, ["coreml:tiny.viaonnx", "onnx:tiny", "validate:tiny"])
    assert "why: onnx.exporter changed" in capfd.readouterr().out

    edit_recipe(root, lambda d: d["coreml"]["viatorch"].update(capture="export"))
    assert run_doit(root, monkeypatch) == (0, ["coreml:tiny.viatorch", "validate:tiny"])
    assert "why: coreml.viatorch.capture changed" in capfd.readouterr().out
    assert run_doit(root, monkeypatch) == (0, [])

    onnx_file = root / "artifacts" / "tiny" / "tiny.onnx"
    before = onnx_file.read_bytes()
    edit_recipe(root, lambda d: d["onnx"].update(max_abs_error=1e-3))  # re-exports; the same bytes stop there
    assert run_doit(root, monkeypatch) == (0, ["onnx:tiny"])
    assert onnx_file.read_bytes() == before
