"""Elementwise layers with two or more inputs: arithmetic, comparisons, logic, where.

Old layers (`add`, `multiply`, `average`, `max`, `min`) take one input plus a
scalar `alpha`, or several inputs; the *Broadcastable layers take exactly two.
Shapes broadcast like numpy; shapes that do not raise a ShapeMismatchError
naming the layer and both shapes. Comparisons and logic produce 1.0 / 0.0.
"""
from __future__ import annotations

from functools import reduce
from typing import Callable

import numpy as np

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, broadcast_shapes, f32

Binary = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _fold(layer: Layer, op: Binary, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
    broadcast_shapes(layer, *(np.shape(x) for x in inputs))
    return f32(reduce(op, (f32(x) for x in inputs)))


def _register_variadic(name: str, op: Binary, scalar: Callable[[np.ndarray, float], np.ndarray] | None) -> None:
    def kernel(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 1:
            if scalar is None:
                return f32(inputs[0]).copy()
            return f32(scalar(f32(inputs[0]), np.float32(layer.params.alpha)))
        return _fold(layer, op, inputs)

    kernel.__name__ = name
    kernel.__doc__ = f"The `{name}` layer (one input with a scalar, or several broadcastable inputs)."
    NN_LAYERS.register(name)(kernel)


_register_variadic("add", np.add, lambda x, a: x + a)
_register_variadic("multiply", np.multiply, lambda x, a: x * a)
_register_variadic("max", np.maximum, None)
_register_variadic("min", np.minimum, None)


@NN_LAYERS.register("average")
def average(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    """Elementwise mean of the inputs."""
    return f32(_fold(layer, np.add, inputs) / np.float32(len(inputs)))


def _floor_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.floor(a / b)


def _mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.mod(a, b)


_BROADCASTABLE: dict[str, Binary] = {
    "addBroadcastable": np.add,
    "subtractBroadcastable": np.subtract,
    "multiplyBroadcastable": np.multiply,
    "divideBroadcastable": np.divide,
    "floorDivBroadcastable": _floor_div,
    "modBroadcastable": _mod,
    "powBroadcastable": np.power,
    "maxBroadcastable": np.maximum,
    "minBroadcastable": np.minimum,
}

_COMPARISONS: dict[str, Binary] = {
    "equal": np.equal,
    "notEqual": np.not_equal,
    "lessThan": np.less,
    "lessEqual": np.less_equal,
    "greaterThan": np.greater,
    "greaterEqual": np.greater_equal,
}

_LOGICAL: dict[str, Binary] = {
    "logicalAnd": np.logical_and,
    "logicalOr": np.logical_or,
    "logicalXor": np.logical_xor,
}


def _register_binary(name: str, op: Binary, *, compare: bool = False, logical: bool = False) -> None:
    def kernel(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 1 and compare:
            a, b = f32(inputs[0]), np.float32(layer.params.alpha)
        elif len(inputs) == 2:
            a, b = f32(inputs[0]), f32(inputs[1])
            broadcast_shapes(layer, a.shape, b.shape)
        else:
            raise layer.mismatch("number of inputs", len(inputs), "2" if not compare else "1 or 2")
        if logical:
            a, b = a != 0, b != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return f32(op(a, b))

    kernel.__name__ = name
    kernel.__doc__ = f"The `{name}` layer (numpy broadcasting)."
    NN_LAYERS.register(name)(kernel)


for _name, _op in _BROADCASTABLE.items():
    _register_binary(_name, _op)
for _name, _op in _COMPARISONS.items():
    _register_binary(_name, _op, compare=True)
for _name, _op in _LOGICAL.items():
    _register_binary(_name, _op, logical=True)


@NN_LAYERS.register("logicalNot")
def logical_not(layer: Layer, x: np.ndarray) -> np.ndarray:
    """1.0 where x == 0, else 0.0."""
    return f32(np.asarray(x) == 0)


@NN_LAYERS.register("whereBroadcastable")
def where_broadcastable(layer: Layer, condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a where condition != 0, else b; all three broadcast."""
    broadcast_shapes(layer, np.shape(condition), np.shape(a), np.shape(b))
    return f32(np.where(np.asarray(condition) != 0, a, b))
