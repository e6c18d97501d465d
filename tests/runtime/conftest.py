"""Shared helpers for runtime tests: tiny NeuralNetwork specs built with coremltools' builder."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from modelbuild.quiet import coremltools


@pytest.fixture(scope="session")
def ct() -> Any:
    return coremltools()


@pytest.fixture
def make_builder(ct) -> Callable[..., Any]:
    """make_builder({"x": (1, 3, 4, 4)}, ["y"], mode=None, rank5=False) -> NeuralNetworkBuilder."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    def make(inputs: dict[str, tuple[int, ...]], outputs: list[str], *, mode: str | None = None,
             rank5: bool = False) -> Any:
        return NeuralNetworkBuilder(
            [(n, datatypes.Array(*s)) for n, s in inputs.items()], [(n, None) for n in outputs],
            mode=mode, disable_rank5_shape_mapping=not rank5,
        )

    return make
