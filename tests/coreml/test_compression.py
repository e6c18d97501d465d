"""A variant's compression section on a converted model: weights, and activations calibrated by the runtime."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from surgery.helpers import SHAPE, TinyClassifier, mil_op_types, run_coreml, sample, seeded, torch_outputs

from modelbuild.coreml.compression import activation_ranges
from modelbuild.coreml.quiet import quiet_conversion
from modelbuild.quiet import coremltools
from modelbuild.recipe.compression import Compression, compress


@pytest.fixture(scope="module")
def classifier():
    return seeded(TinyClassifier)


@pytest.fixture(scope="module")
def float16_program(classifier):
    ct = coremltools()
    with torch.no_grad(), warnings.catch_warnings(), quiet_conversion():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(classifier, torch.from_numpy(sample()))
        return ct.convert(traced, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                          inputs=[ct.TensorType(name="x", shape=SHAPE, dtype=np.float32)],
                          outputs=[ct.TensorType(name="y", dtype=np.float32)])


def test_activation_ranges_are_measured_by_the_runtime(float16_program):
    calibration = [{"x": sample(seed=seed)} for seed in range(3)]
    ranges = activation_ranges(float16_program, calibration)
    inputs = np.stack([feeds["x"] for feeds in calibration])
    assert ranges["x"] == {"rmin": pytest.approx(float(inputs.min())), "rmax": pytest.approx(float(inputs.max()))}
    assert "y" not in ranges  # model outputs are not quantized
    assert any(r["rmin"] == 0 and r["rmax"] > 0 for r in ranges.values())  # a relu's output


def test_int8_activations_and_weights(float16_program, classifier):
    calibration = [{"x": sample(seed=seed)} for seed in range(4)]
    compressed = compress(float16_program, Compression(activations={}, quantize={}), calibration)
    ops = mil_op_types(compressed)
    assert {"quantize", "dequantize", "constexpr_affine_dequantize"} <= set(ops)
    x = sample(seed=9)
    expected = torch_outputs(classifier, x)
    error = np.abs(run_coreml(compressed, {"x": x})["y"] - expected).max() / np.abs(expected).max()
    print(f"int8 activations and weights: max relative error {error:.2e} ({ops.count('quantize')} quantize ops)")
    assert 0 < error < 5e-2


def test_activations_need_calibration_inputs(float16_program):
    with pytest.raises(ValueError, match="int8 activations needs calibration inputs"):
        compress(float16_program, Compression(activations={}))


@pytest.mark.parametrize("format", ["mlprogram", "neuralnetwork"])
def test_a_compression_that_changes_no_weight_is_an_error(classifier, format):
    """Every weight at or under min_weight_elements: the variant would be its source under another name."""
    ct = coremltools()
    with torch.no_grad(), warnings.catch_warnings(), quiet_conversion():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(classifier, torch.from_numpy(sample()))
        target = ct.target.iOS17 if format == "mlprogram" else ct.target.iOS14
        mlmodel = ct.convert(traced, convert_to=format, minimum_deployment_target=target,
                             inputs=[ct.TensorType(name="x", shape=SHAPE, dtype=np.float32)])
    with pytest.raises(ValueError, match=r"compression \(int8\) changed no weight: every weight has at most "
                                         r"min_weight_elements \(10000\) values"):
        compress(mlmodel, Compression(quantize={}, min_weight_elements=10000))
    assert compress(mlmodel, Compression(quantize={}, min_weight_elements=0))  # the same model compresses
