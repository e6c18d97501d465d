"""Weight storage: float16Value and quantized (linear, lookup table) weights, decoded and run."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime.nn.weights import decode_weights
from modelbuild.runtime.registry import ModelRuntimeError


def _pack(levels: np.ndarray, nbits: int) -> bytes:
    """Pack unsigned ints MSB first, as coremltools' quantization utilities do (independent oracle)."""
    bits = [(int(v) >> i) & 1 for v in levels for i in reversed(range(nbits))]
    bits += [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def _weight_params():
    from modelbuild.quiet import coremltools

    coremltools()
    from coremltools.proto import NeuralNetwork_pb2

    return NeuralNetwork_pb2.WeightParams()


def test_float16_values():
    wp = _weight_params()
    values = np.array([0.5, -1.25, 3.0e-3, 65504.0], dtype=np.float16)
    wp.float16Value = values.tobytes()
    np.testing.assert_array_equal(decode_weights(wp, 4), values.astype(np.float32))


@pytest.mark.parametrize("nbits", [1, 2, 4, 7, 8])
def test_linear_quantization_per_channel(nbits):
    rng = np.random.default_rng(nbits)
    levels = rng.integers(0, 2**nbits, size=(3, 5))
    scale, bias = np.array([0.5, 0.25, 2.0]), np.array([-1.0, 0.0, 3.0])
    wp = _weight_params()
    wp.rawValue = _pack(levels.reshape(-1), nbits)
    wp.quantization.numberOfBits = nbits
    wp.quantization.linearQuantization.scale.extend(scale)
    wp.quantization.linearQuantization.bias.extend(bias)
    expected = levels * scale[:, None] + bias[:, None]
    np.testing.assert_allclose(decode_weights(wp, 15).reshape(3, 5), expected, rtol=1e-6)


def test_lookup_table_quantization():
    levels = np.array([3, 0, 1, 2, 2, 3, 1])
    table = np.array([-1.0, 0.5, 2.0, 10.0])
    wp = _weight_params()
    wp.rawValue = _pack(levels, 2)
    wp.quantization.numberOfBits = 2
    wp.quantization.lookupTableQuantization.floatValue.extend(table)
    np.testing.assert_array_equal(decode_weights(wp, 7), table[levels])
    del wp.quantization.lookupTableQuantization.floatValue[:]
    wp.quantization.lookupTableQuantization.floatValue.extend([1.0, 2.0])
    with pytest.raises(ModelRuntimeError, match="lookup table has 2 entries; 2-bit weights need 4"):
        decode_weights(wp, 7)


def test_int8_raw_values_with_per_channel_scale():
    levels = np.array([[-128, 0, 5], [127, -3, 1]], dtype=np.int8)
    wp = _weight_params()
    wp.int8RawValue = levels.tobytes()
    wp.quantization.numberOfBits = 8
    wp.quantization.linearQuantization.scale.extend([0.5, 2.0])
    np.testing.assert_array_equal(decode_weights(wp, 6).reshape(2, 3), levels * np.array([[0.5], [2.0]]))


def test_wrong_count_is_reported():
    wp = _weight_params()
    wp.floatValue.extend([1.0, 2.0, 3.0])
    with pytest.raises(ModelRuntimeError, match="holds 3 values; the layer needs 4"):
        decode_weights(wp, 4, where="conv: weights")


@pytest.mark.ops("innerProduct", "convolution")
@pytest.mark.parametrize("mode", ["linear", "linear_lut", "linear_symmetric"])
def test_quantized_model_runs_close_to_float(make_builder, mode):
    """coremltools' own weight quantizer writes the spec; the runtime must decode it."""
    from coremltools.models.neural_network.quantization_utils import quantize_weights

    from modelbuild.quiet import coremltools
    from modelbuild.runtime import load

    ct = coremltools()
    rng = np.random.default_rng(0)
    builder = make_builder({"x": (1, 2, 5, 5)}, ["y"])
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    builder.add_convolution("conv", 2, 4, 3, 3, 1, 1, "valid", 1, w, None, False, input_name="x", output_name="h")
    fc = rng.standard_normal((6, 36)).astype(np.float32)
    builder.add_inner_product("fc", fc, rng.standard_normal(6).astype(np.float32), 36, 6, True, "h", "y")
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    reference = load(builder.spec, backend="reference").predict({"x": x})["y"]
    quantized = quantize_weights(ct.models.MLModel(builder.spec, skip_model_load=True), 8, mode)
    spec = quantized.get_spec() if hasattr(quantized, "get_spec") else quantized
    layer = spec.neuralNetwork.layers[0].convolution.weights
    assert layer.HasField("quantization") and not len(layer.floatValue)
    y = load(spec, backend="reference").predict({"x": x})["y"]
    assert np.abs(y - reference).max() <= 0.05 * np.abs(reference).max()
    fp16 = quantize_weights(ct.models.MLModel(builder.spec, skip_model_load=True), 16)
    spec16 = fp16.get_spec() if hasattr(fp16, "get_spec") else fp16
    assert len(spec16.neuralNetwork.layers[0].convolution.weights.float16Value)
    y16 = load(spec16, backend="reference").predict({"x": x})["y"]
    assert np.abs(y16 - reference).max() <= 2e-3 * np.abs(reference).max()
