"""How much each weight's error costs: the energy of the input it multiplies.

A convolution or linear layer computes sum_i w[o, i] * x[i]; an error e in w[o, i] moves the
output by about e * x[i], so the expected squared output error of a palette is
sum e[o, i]^2 * E[x[i]^2]. Weighting k-means by E[x[i]^2] (the mean square of input channel i,
measured by the reference runtime on calibration inputs) keeps the weights that read loud
channels precise: activation-aware palettes. FFDNet with the official weights needs them (its
folded batch norms give some channels far larger activations than others).

coremltools hands a palette function only the values to palettize (a whole weight, or a group
of its output channels), so the importance is looked up by content: the bytes of each output
channel's row (and of the whole weight) name the weight they belong to.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from modelbuild import runtime
from modelbuild.coreml.weight_selection import _layers
from modelbuild.surgery.coreml_spec import model_format


class Importance:
    """Importance of every value of the weights of the model's convolutions and linear layers."""

    def __init__(self) -> None:
        self._rows: dict[bytes, np.ndarray] = {}
        self._whole: dict[bytes, np.ndarray] = {}

    def add(self, weight: np.ndarray, energy: np.ndarray) -> None:
        """A weight [out, in, ...] whose input channel i has mean square energy[i]."""
        row = np.broadcast_to(np.asarray(energy, np.float64).reshape(-1, *[1] * (weight.ndim - 2)), weight.shape[1:])
        for values in weight:
            self._rows[_key(values)] = row
        self._whole[_key(weight)] = np.broadcast_to(row, weight.shape)
        self._whole[_key(weight.reshape(-1))] = np.broadcast_to(row, weight.shape).reshape(-1)

    def of(self, values: np.ndarray) -> np.ndarray | None:
        """The importance of `values` (a known weight, or some of its output channels), else None."""
        values = np.asarray(values)
        if _key(values) in self._whole:
            return self._whole[_key(values)]
        rows = [self._rows.get(_key(row)) for row in values] if values.ndim >= 2 else [None]
        return None if any(row is None for row in rows) else np.stack(rows)

    def __len__(self) -> int:
        return len(self._whole) // 2


def _key(values: np.ndarray) -> bytes:
    values = np.ascontiguousarray(values, np.float32)
    return hashlib.sha1(str(values.shape).encode() + values.tobytes()).digest()


def input_energy(activations: list[np.ndarray], channel_axis: int) -> np.ndarray:
    """Mean square of each channel over the calibration inputs."""
    per_input = [np.mean(np.asarray(a, np.float64) ** 2, axis=tuple(i for i in range(a.ndim) if i != channel_axis % a.ndim))
                 for a in activations]
    return np.mean(per_input, axis=0)


def weight_importance(mlmodel: Any, calibration: list[dict[str, Any]]) -> Importance:
    """The importance of the model's convolution and linear weights, measured on `calibration`."""
    model = runtime.load(mlmodel, backend="reference")
    values = [{**{name: np.asarray(v) for name, v in feeds.items() if isinstance(v, np.ndarray)},
               **model.predict(feeds, intermediate=True)} for feeds in calibration]
    spec = mlmodel.get_spec()
    layers = _program_layers(mlmodel) if model_format(spec) == "mlprogram" else _network_layers(spec)
    importance = Importance()
    for weight, input_name, channel_axis in layers:
        seen = [v[input_name] for v in values if input_name in v]
        if seen and seen[0].shape[channel_axis] == weight.shape[1]:
            importance.add(weight, input_energy(seen, channel_axis))
    return importance


def _program_layers(mlmodel: Any):
    """(weight, input name, channel axis) of each ML Program conv (groups 1) and linear op."""
    program = runtime.Program.from_spec(mlmodel.get_spec(), mlmodel.weights_dir)
    for name, function in program.functions.items():
        constants = program.constants(name)
        for op in function.block.operations:
            if op.type not in ("conv", "linear"):
                continue
            weight, x = _bound(op, "weight", constants), _name(op, "x")
            groups = _bound(op, "groups", constants) if op.type == "conv" else 1
            if weight is not None and x is not None and int(np.asarray(1 if groups is None else groups)) == 1:
                yield np.asarray(weight, np.float32), x, (1 if op.type == "conv" else -1)


def _name(op: Any, parameter: str) -> str | None:
    """The var an op's parameter reads (None when it is absent or an inline value)."""
    bindings = op.inputs.get(parameter) or [("value", None)]
    kind, value = bindings[0]
    return value if kind == "name" else None


def _bound(op: Any, parameter: str, constants: dict[str, Any]) -> Any:
    """An op parameter's value when it is known before running (inline, or a const), else None."""
    bindings = op.inputs.get(parameter) or [("value", None)]
    kind, value = bindings[0]
    return constants.get(value) if kind == "name" else value


def _network_layers(spec: Any):
    """(weight, input name, channel axis) of each NeuralNetwork convolution (one group) and inner product."""
    for layer in _layers(spec):
        kind = layer.WhichOneof("layer")
        if kind == "convolution" and layer.convolution.nGroups <= 1 and len(layer.convolution.weights.floatValue):
            params = layer.convolution
            weight = np.asarray(params.weights.floatValue, np.float32).reshape(
                params.outputChannels, params.kernelChannels, *params.kernelSize)
            yield weight, layer.input[0], 1
        elif kind == "innerProduct" and len(layer.innerProduct.weights.floatValue):
            params = layer.innerProduct
            weight = np.asarray(params.weights.floatValue, np.float32).reshape(params.outputChannels,
                                                                               params.inputChannels)
            yield weight, layer.input[0], -1
