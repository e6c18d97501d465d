"""Fixtures for NeuralNetwork layer tests: build a tiny spec around one layer and run it."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from modelbuild.quiet import coremltools
from modelbuild.runtime import load

LayerAdder = Callable[[Any], None]


def build_spec(inputs: dict[str, tuple[int, ...]], outputs: list[str], add: LayerAdder, *, rank5: bool = False) -> Any:
    """A NeuralNetwork spec with the given float inputs, built by `add(builder)`."""
    ct = coremltools()
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    builder = NeuralNetworkBuilder(
        [(name, datatypes.Array(*shape)) for name, shape in inputs.items()],
        [(name, None) for name in outputs],
        disable_rank5_shape_mapping=not rank5,
    )
    add(builder)
    del ct
    return builder.spec


def run_spec(spec: Any, feeds: dict[str, np.ndarray], **kwargs: Any) -> dict[str, Any]:
    return load(spec, backend="reference").predict(feeds, **kwargs)


@pytest.fixture
def run_layer() -> Callable[..., Any]:
    """run_layer(add, feeds, outputs=("y",), rank5=False) -> the output(s) of a one-layer model."""

    def run(add: LayerAdder, feeds: dict[str, np.ndarray], outputs: tuple[str, ...] = ("y",),
            rank5: bool = False) -> Any:
        shapes = {name: np.shape(value) for name, value in feeds.items()}
        spec = build_spec(shapes, list(outputs), add, rank5=rank5)
        result = run_spec(spec, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})
        values = [result[name] for name in outputs]
        return values[0] if len(values) == 1 else values

    return run


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def raw_layer_adder(kind: str, inputs: tuple[str, ...] = ("x",), outputs: tuple[str, ...] = ("y",),
                    configure: Callable[[Any], None] | None = None, **fields: Any) -> LayerAdder:
    """An adder that appends a `kind` layer to the builder's spec, fields set from keywords."""

    def add(builder: Any) -> None:
        layer = builder.nn_spec.layers.add()
        layer.name = f"{kind}_layer"
        layer.input.extend(inputs)
        layer.output.extend(outputs)
        params = getattr(layer, kind)
        params.SetInParent()
        for key, value in fields.items():
            if isinstance(value, (list, tuple)):
                getattr(params, key).extend(value)
            else:
                setattr(params, key, value)
        if configure is not None:
            configure(params)

    return add


@pytest.fixture
def raw_layer() -> Callable[..., LayerAdder]:
    """raw_layer(kind, inputs=("x",), outputs=("y",), configure=None, **fields) -> a layer adder."""
    return raw_layer_adder
