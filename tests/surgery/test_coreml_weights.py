"""Core ML weight steps: fp16, linear quantization, palettization (closeness figures printed with -s)."""
from __future__ import annotations

import numpy as np
import pytest
from surgery.helpers import mil_op_types, nn_layer_types, run_coreml, sample, torch_outputs

from modelbuild.coreml.weight_selection import program_ops
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
    print(f"coreml::palettize k-means {nbits} bits: max relative error {error:.2e}")
    assert 0 < error < (2e-2 if nbits == 8 else 2e-1)


def _nn_quantization(mlmodel) -> dict[str, tuple[str, int]]:
    """{layer name: (quantization kind, bits)} of the NeuralNetwork layers with weights."""
    found = {}
    for layer in mlmodel.get_spec().neuralNetwork.layers:
        kind = layer.WhichOneof("layer")
        if kind in ("convolution", "innerProduct"):
            quantization = getattr(layer, kind).weights.quantization
            found[layer.name] = (quantization.WhichOneof("QuantizationType") or "none", quantization.numberOfBits)
    return found


@pytest.mark.parametrize("step, form, limit", [
    ({"step": "coreml::linear_quantize"}, ("linearQuantization", 8), 1e-2),
    ({"step": "coreml::linear_quantize", "dtype": "uint4", "mode": "linear"}, ("linearQuantization", 4), 1.5e-1),
    ({"step": "coreml::palettize", "nbits": 6}, ("lookupTableQuantization", 6), 2e-2),
    ({"step": "coreml::palettize", "nbits": 4, "mode": "uniform"}, ("lookupTableQuantization", 4), 1.5e-1),
])
def test_neuralnetwork_compression(apply_step, nn_classifier, classifier, step, form, limit):
    """coremltools' quantization utilities on a NeuralNetwork: conv2 (4608 weights) is compressed, conv1
    (432) and fc (320) are under the default threshold; with a threshold of 100 every layer is."""
    default = apply_step(nn_classifier, step)
    assert sorted(_nn_quantization(default).values()) == sorted([form, ("none", 0), ("none", 0)])
    everything = apply_step(nn_classifier, {**step, "weight_threshold": 100})
    assert set(_nn_quantization(everything).values()) == {form}
    error = _relative_error(everything, classifier)
    print(f"{step}: neuralnetwork max relative error {error:.2e}")
    assert 0 < error < limit


def test_skipped_ops_and_types_stay_uncompressed(apply_step, mlprogram_classifier, nn_classifier):
    everything = {"step": "coreml::linear_quantize", "weight_threshold": 100}
    assert mil_op_types(apply_step(mlprogram_classifier, {**everything, "skip_op_types": ["linear"]})).count(
        "constexpr_affine_dequantize") == 2
    first_conv = next(name for name, kind in program_ops(mlprogram_classifier.get_spec()) if kind == "conv")
    assert mil_op_types(apply_step(mlprogram_classifier, {**everything, "skip_ops": [first_conv]})).count(
        "constexpr_affine_dequantize") == 2
    kept = apply_step(nn_classifier, {**everything, "skip_op_types": ["innerProduct"]})
    assert [kind for kind, _ in _nn_quantization(kept).values()] == ["linearQuantization"] * 2 + ["none"]


@pytest.mark.parametrize("model", ["mlprogram_classifier", "nn_classifier"])
def test_a_skip_pattern_that_matches_nothing_is_refused(request, model):
    with pytest.raises(SurgeryError, match=r"coreml::palettize: 'conv_9\*' matches no .* of the model; its "):
        apply_steps(request.getfixturevalue(model), [{"step": "coreml::palettize", "skip_ops": ["conv_9*"]}])


@pytest.mark.parametrize("step, reason", [
    ({"step": "coreml::linear_quantize", "granularity": "per_tensor"}, "per output channel only, not per_tensor"),
    ({"step": "coreml::linear_quantize", "dtype": "int4"}, "symmetric quantization is 8-bit only"),
    ({"step": "coreml::palettize", "granularity": "per_grouped_channel"}, "one table per weight"),
    ({"step": "coreml::prune", "sparsity": 0.5}, "no sparse weights"),
])
def test_neuralnetwork_refuses_what_it_cannot_store(nn_classifier, step, reason):
    with pytest.raises(SurgeryError, match=f"{step['step']}: NeuralNetwork .*{reason}.*; convert with format "
                                           "'mlprogram' for that"):
        apply_steps(nn_classifier, [step])


def test_prune_mlprogram(apply_step, mlprogram_classifier, classifier):
    pruned = apply_step(mlprogram_classifier, {"step": "coreml::prune", "sparsity": 0.5})
    assert mil_op_types(pruned).count("constexpr_sparse_to_dense") == 1
    assert pruned.get_spec().specificationVersion == 7
