"""Compressed variants in a build: made from another variant's artifact, sized in the manifest and the
report, judged on the task (top-1 agreement over the samples), plotted as size against the metric."""
from __future__ import annotations

import json

from projects import edit_recipe, make_classifier_project, run_doit

VARIANTS = {
    "program_int8": {"from_variant": "program", "file": "clf_int8.mlpackage",
                     "compression": {"quantize": {"dtype": "int8"}, "min_weight_elements": 0}},
    "program_palette4": {"from_variant": "program", "file": "clf_palette4.mlpackage",
                         "compression": {"palettize": {"nbits": 4}, "min_weight_elements": 0}},
    "nn_palette6": {"from_variant": "nn", "file": "clf_palette6.mlmodel",
                    "compression": {"palettize": {"nbits": 6}, "min_weight_elements": 0}},
}


def test_compressed_variants_build_validate_and_plot(tmp_path, monkeypatch):
    root = make_classifier_project(tmp_path)
    edit_recipe(root, lambda d: d["coreml"].update(VARIANTS), name="clf")
    code, executed = run_doit(root, monkeypatch, "build:clf")
    assert code == 0, (root / "doit-report.txt").read_text()
    artifacts = root / "artifacts" / "clf"
    manifest = json.loads((artifacts / "manifest.json").read_text())
    records = manifest["artifacts"]
    program, int8 = records["coreml.program"], records["coreml.program_int8"]
    assert int8["from_variant"] == "program" and int8["compression"] == "int8"
    assert int8["weights_bytes"] < 0.4 * program["weights_bytes"]  # a tiny model: blob headers weigh
    assert int8["size_bytes"] < program["size_bytes"]
    assert records["coreml.nn_palette6"]["weights_bytes"] < 0.8 * records["coreml.nn"]["weights_bytes"]
    assert records["onnx"]["weights_bytes"] > 0

    report = json.loads((artifacts / "report.json").read_text())
    assert report["passed"]
    assert report["artifacts"]["program_palette4"]["compression"] == "4-bit palette"
    over_samples = {c["artifact"]: c for c in report["comparisons"] if c["sample"].startswith("(all")}
    assert set(over_samples) == {"program_palette4", "nn_palette6"}  # int8: the same top-1 on every sample
    assert over_samples["program_palette4"]["checks"][0]["limit"] == 0.5
    assert over_samples["nn_palette6"]["checks"][0]["limit"] == 0.75
    print({name: (c["figures"]["top1_rate"]) for name, c in over_samples.items()})
    page = (artifacts / "report.html").read_text()
    assert "<h2>Size and task metric</h2>" in page and "<svg" in page and 'class="front"' in page
    markdown = (artifacts / "report.md").read_text()
    assert "| program_int8 | int8 |" in markdown and "of program |" in markdown

    code, executed = run_doit(root, monkeypatch, "build:clf")
    assert code == 0 and not [task for task in executed if task.startswith(("coreml:", "validate:"))]
