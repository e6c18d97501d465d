"""Feature values <-> the arrays the reference interpreters compute on.

`prepare_inputs` checks and converts what a caller gives `predict` (PIL images
become float32 [C, H, W] arrays in the declared colour layout, arrays are cast
to the declared dtype and checked against the declared shapes); `finish_outputs`
turns what an interpreter produced into what coremltools' `predict` returns.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from modelbuild.runtime.features import FeatureDescription, InputError, check_array_shape
from modelbuild.runtime.images import array_to_image, image_to_array
from modelbuild.runtime.registry import ModelRuntimeError


def prepare_inputs(inputs: dict[str, FeatureDescription], values: dict[str, Any]) -> dict[str, Any]:
    """Each of `values` (named as in `inputs`) checked and converted by `prepare_input`."""
    return {name: prepare_input(inputs[name], value) for name, value in values.items()}


def prepare_input(desc: FeatureDescription, value: Any) -> Any:
    """A checked Core ML-level input: [C, H, W] float32 for images, an array of the declared dtype."""
    if desc.kind == "image":
        return image_to_array(value, desc)
    if desc.kind == "multiArray":
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:
            raise InputError(f"Input {desc.name!r} must be an array, not {type(value).__name__}: {err}") from err
        if array.dtype == object or not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
            raise InputError(f"Input {desc.name!r} must hold numbers, not {array.dtype}.")
        if array.ndim == 0:
            array = array.reshape(1)
        check_array_shape(desc, tuple(array.shape))
        return array.astype(desc.dtype or np.float32, copy=False)
    if desc.kind == "double":
        return np.asarray(float(value), dtype=np.float64)
    if desc.kind == "int64":
        return np.asarray(int(value), dtype=np.int64)
    return value


def finish_outputs(outputs: dict[str, FeatureDescription], raw: dict[str, Any], *, intermediate: bool) -> dict[str, Any]:
    """Declared outputs converted to their feature types; other values kept if `intermediate`."""
    result: dict[str, Any] = {}
    for name, desc in outputs.items():
        if name not in raw:
            if desc.optional:
                continue
            raise ModelRuntimeError(f"The model did not produce its declared output {name!r}.")
        result[name] = convert_output(desc, raw[name])
    if intermediate:
        for name, value in raw.items():
            if name not in result:
                result[name] = value
    return result


def convert_output(desc: FeatureDescription, value: Any) -> Any:
    """One output value as coremltools' predict would return it (a value already converted stays as it is)."""
    if desc.kind == "image":
        return value if isinstance(value, Image.Image) else array_to_image(np.asarray(value), desc)
    if desc.kind == "multiArray":
        array = np.asarray(value)
        if array.ndim == 0:  # an MLMultiArray has rank >= 1: Core ML returns scalars as shape (1,)
            array = array.reshape(1)
        if desc.shape and not desc.is_flexible and array.shape != desc.shape and array.size == int(np.prod(desc.shape)):
            array = array.reshape(desc.shape)
        return array.astype(desc.dtype or np.float32, copy=False)
    if desc.kind == "double":
        return float(np.asarray(value).reshape(-1)[0])
    if desc.kind == "int64":
        return int(np.asarray(value).reshape(-1)[0])
    return value
