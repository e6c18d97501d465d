"""inspect lists each weight's storage: the compressed forms coremltools writes, NeuralNetwork quantization."""
from __future__ import annotations

import pytest
from surgery.helpers import CLASSES, TinyClassifier, convert_coreml, seeded

from modelbuild.inspection import describe, describe_file
from modelbuild.surgery import apply_steps

EVERY = {"weight_threshold": 0}


@pytest.mark.parametrize("fmt, target, steps, forms", [
    ("mlprogram", "iOS16", [{"step": "coreml::linear_quantize", **EVERY}], {"int8 linear, per-channel"}),
    ("mlprogram", "iOS18", [{"step": "coreml::palettize", "nbits": 4, "granularity": "per_grouped_channel",
                             "group_size": 8, **EVERY}], {"4-bit palette, 2 tables", "4-bit palette, 4 tables"}),
    ("mlprogram", "iOS18", [{"step": "coreml::prune", "sparsity": 0.5, **EVERY},
                            {"step": "coreml::palettize", "nbits": 2, "joint": True, **EVERY}],
     {"2-bit palette of the 50% nonzero values + sparse"}),
    ("neuralnetwork", None, [{"step": "coreml::palettize", "nbits": 6, **EVERY}], {"6-bit palette", "float32"}),
])
def test_weight_forms(tmp_path, fmt, target, steps, forms):
    model = apply_steps(convert_coreml(seeded(TinyClassifier), fmt, (1, CLASSES), target), steps)
    path = tmp_path / ("m.mlpackage" if fmt == "mlprogram" else "m.mlmodel")
    model.save(str(path))
    description = describe(path)
    assert {w["form"] for w in description["weights"]} <= forms | {"float32"}
    assert {w["form"] for w in description["weights"]} & forms
    assert description["weights_bytes"] > 0
    text = describe_file(path)
    print(text)
    assert "weights: " in text and next(iter(forms - {"float32"})) in text
