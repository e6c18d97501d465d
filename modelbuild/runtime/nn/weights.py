"""Decode NeuralNetwork `WeightParams`: float32, float16 and quantized weights.

int8RawValue holds signed bytes scaled by the linear scale (int8DynamicQuantize
layers). Quantized weights follow NeuralNetwork.proto's QuantizationParams: `rawValue`
holds `numberOfBits`-bit unsigned integers packed most significant bit first;
linear quantization maps q -> scale[c] * q + bias[c] per output channel (or with
one scale/bias for all), a lookup table maps q -> table[q].
"""
from __future__ import annotations

from typing import Any

import numpy as np

from modelbuild.runtime.registry import ModelRuntimeError


def _unpack_bits(raw: bytes, count: int, nbits: int) -> np.ndarray:
    data = np.frombuffer(raw, dtype=np.uint8)
    if nbits == 8:
        return data[:count].astype(np.int64)
    bits = np.unpackbits(data)[: count * nbits].reshape(count, nbits).astype(np.int64)
    return bits @ (1 << np.arange(nbits - 1, -1, -1, dtype=np.int64))


def _dequantize(wp: Any, count: int, channel_axis_shape: tuple[int, int] | None, where: str) -> np.ndarray:
    quant = wp.quantization
    nbits = int(quant.numberOfBits)
    if not 1 <= nbits <= 8:
        raise ModelRuntimeError(f"{where}: quantized weights with {nbits} bits; Core ML accepts 1 to 8.")
    levels = _unpack_bits(wp.rawValue, count, nbits)
    kind = quant.WhichOneof("QuantizationType")
    if kind == "lookupTableQuantization":
        table = np.asarray(quant.lookupTableQuantization.floatValue, dtype=np.float32)
        if table.size != 2**nbits:
            raise ModelRuntimeError(
                f"{where}: the lookup table has {table.size} entries; {nbits}-bit weights need {2**nbits}."
            )
        return table[levels]
    if kind == "linearQuantization":
        scale = np.asarray(quant.linearQuantization.scale, dtype=np.float32)
        bias = np.asarray(quant.linearQuantization.bias, dtype=np.float32)
        if bias.size == 0:
            bias = np.zeros_like(scale)
        if scale.size == 1:
            return levels.astype(np.float32) * scale[0] + bias[0]
        # per-channel: channel_axis_shape = (leading, channels) so that the weights
        # reshape to (leading, channels, rest); leading is 1 when channels come first.
        leading, channels = channel_axis_shape or (1, scale.size)
        if scale.size != channels or count % (leading * channels):
            raise ModelRuntimeError(
                f"{where}: {scale.size} linear quantization scales do not fit {count} weights "
                f"with {channels} output channels."
            )
        q = levels.astype(np.float32).reshape(leading, channels, -1)
        return (q * scale[None, :, None] + bias[None, :, None]).reshape(-1)
    raise ModelRuntimeError(f"{where}: weights have rawValue but no quantization parameters.")


def _int8_values(wp: Any, channel_axis_shape: tuple[int, int] | None) -> np.ndarray:
    """int8RawValue times the linear quantization scale (one, or one per output channel)."""
    levels = np.frombuffer(wp.int8RawValue, dtype=np.int8).astype(np.float32)
    scale = np.asarray(wp.quantization.linearQuantization.scale, dtype=np.float32)
    if scale.size <= 1:
        return levels * (scale[0] if scale.size else np.float32(1))
    leading, channels = channel_axis_shape or (1, scale.size)
    return (levels.reshape(leading, channels, -1) * scale[None, :, None]).reshape(-1)


def decode_weights(
    wp: Any,
    count: int | None = None,
    *,
    where: str = "weights",
    channel_axis_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """The values of `wp` as a flat float32 array; `count` checks (and is needed for quantized) sizes."""
    if len(wp.floatValue):
        values = np.asarray(wp.floatValue, dtype=np.float32)
    elif len(wp.float16Value):
        values = np.frombuffer(wp.float16Value, dtype="<f2").astype(np.float32)
    elif len(wp.int8RawValue):
        values = _int8_values(wp, channel_axis_shape)
    elif wp.HasField("quantization"):
        if count is None:
            raise ModelRuntimeError(f"{where}: quantized weights need a known element count.")
        values = _dequantize(wp, count, channel_axis_shape, where)
    elif len(wp.rawValue):
        values = np.frombuffer(wp.rawValue, dtype="<f4").astype(np.float32)
    else:
        values = np.zeros(0, dtype=np.float32)
    if count is not None and values.size != count:
        raise ModelRuntimeError(f"{where} holds {values.size} values; the layer needs {count}.")
    return values
