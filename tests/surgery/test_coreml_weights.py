"""Core ML weight steps: fp16, linear quantization, palettization (closeness figures printed with -s)."""
from __future__ import annotations

import numpy as np
import pytest
from surgery.helpers import mil_op_types, nn_layer_types, run_coreml, sample, torch_outputs

from modelbuild.surgery import SurgeryError, apply_steps


def _relative_error(mlmodel, classifier) -> float:
    """max |coreml - torch| / max |torch| over a batch of samples."""
    errors = []
    for seed in range(4):
        x = sample(seed=seed)
        expected = torch_outputs(classifier, x)
        errors.append(np.abs(run_coreml(mlmodel, {"x": x})["y"] - expected).max() / np.abs(expected).max())
    return float(max(errors))


def _nn_weight_fields(mlmodel) -> set[str]:
    fields = set()
    for layer in mlmodel.get_spec().neuralNetwork.layers:
        kind = layer.WhichOneof("layer")
        if kind in ("convolution", "innerProduct"):
            weights = getattr(layer, kind).weights
            fields |= {name for name in ("floatValue", "float16Value") if len(getattr(weights, name))}
    return fields


def test_fp16_weights_neuralnetwork(apply_step, nn_classifier, classifier):
    assert _nn_weight_fields(nn_classifier) == {"floatValue"}
    half = apply_step(nn_classifier, {"step": "coreml::fp16_weights"})
    assert _nn_weight_fields(half) == {"float16Value"}
    assert nn_layer_types(half) == nn_layer_types(nn_classifier)
    error = _relative_error(half, classifier)
    print(f"coreml::fp16_weights neuralnetwork: max relative error {error:.2e}")
    assert 0 < error < 2e-3


def test_fp16_weights_mlprogram(apply_step, mlprogram_classifier, classifier):
    half = apply_step(mlprogram_classifier, {"step": "coreml::fp16_weights"})
    assert half.get_spec().specificationVersion == mlprogram_classifier.get_spec().specificationVersion == 6
    ops = mil_op_types(half)
    assert ops.count("cast") == 2  # fp32 input -> fp16 ... fp16 -> fp32 output
    assert [op for op in ops if op not in ("const", "cast")] == \
        [op for op in mil_op_types(mlprogram_classifier) if op != "const"]
    error = _relative_error(half, classifier)
    print(f"coreml::fp16_weights mlprogram: max relative error {error:.2e}")
    assert 0 < error < 5e-3


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_linear_quantize(apply_step, mlprogram_classifier, classifier, dtype):
    quantized = apply_step(mlprogram_classifier, {"step": "coreml::linear_quantize", "dtype": dtype})
    assert mil_op_types(quantized).count("constexpr_affine_dequantize") == 1  # conv2: 4608 weights >= 2048
    assert quantized.get_spec().specificationVersion == 7  # constexpr ops need iOS16
    everything = apply_step(mlprogram_classifier, {"step": "coreml::linear_quantize", "dtype": dtype,
                                                   "weight_threshold": 100})
    assert mil_op_types(everything).count("constexpr_affine_dequantize") == 3  # conv1 432, fc 320 too
    error = _relative_error(everything, classifier)
    print(f"coreml::linear_quantize {dtype}: max relative error {error:.2e}")
    assert 0 < error < 3e-2


@pytest.mark.parametrize("nbits", [8, 4])
def test_palettize(apply_step, mlprogram_classifier, classifier, nbits):
    palettized = apply_step(mlprogram_classifier, {"step": "coreml::palettize", "nbits": nbits})
    assert mil_op_types(palettized).count("constexpr_lut_to_dense") == 1
    error = _relative_error(palettized, classifier)
    print(f"coreml::palettize uniform {nbits} bits: max relative error {error:.2e}")
    assert 0 < error < (2e-2 if nbits == 8 else 2e-1)


@pytest.mark.parametrize("step", [{"step": "coreml::linear_quantize"}, {"step": "coreml::palettize"}])
def test_compression_refuses_neuralnetwork(nn_classifier, step):
    with pytest.raises(SurgeryError, match=f"{step['step']} works on ML Program models .* this is a "
                                           "neuralnetwork model. Convert with format 'mlprogram'"):
        apply_steps(nn_classifier, [step])
