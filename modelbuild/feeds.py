"""Input values for a recipe's model: each input's `example` constant, or seeded values in its range.

One generator for every stage (the ONNX export's check, output shapes, validation samples,
calibration), so that every backend is fed the same values of the declared dtype. numpy only.
"""
from __future__ import annotations

import numpy as np

from modelbuild.recipe.schema import Input, Recipe

INTEGER_DTYPES = ("int32", "int64", "bool")


def generated_inputs(recipe: Recipe, seed: int = 0, shapes: dict[str, list[int]] | None = None
                     ) -> dict[str, np.ndarray]:
    """Each input at its declared (or the given) shape: its `example` constant, else seeded values in its range."""
    rng = np.random.default_rng(seed)
    return {name: generated_value(spec, rng, (shapes or {}).get(name, spec.shape))
            for name, spec in recipe.inputs.items()}


def generated_value(spec: Input, rng: np.random.Generator, shape: list[int]) -> np.ndarray:
    """One input's values: the example constant, integers in [min, max], or floats uniform in [min, max)."""
    dtype = np.dtype(spec.dtype)
    if spec.example is not None:
        return np.full(shape, spec.example, dtype)
    low, high = spec.range
    if spec.dtype in INTEGER_DTYPES:
        if spec.dtype == "bool":
            low, high = max(low, 0), min(high, 1)
        return rng.integers(int(np.ceil(low)), int(np.floor(high)), size=shape, endpoint=True).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)

