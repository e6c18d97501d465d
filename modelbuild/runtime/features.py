"""Feature descriptions of a Core ML model and the input checks Core ML applies.

`describe_features(spec_description)` turns a spec's `description.input/output`
into `FeatureDescription`s (type, shape, flexible ranges or enumerated shapes,
image parameters); `check_input` refuses a value the way Core ML would: wrong
shape, an image of a size outside the declared set, a missing feature.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelbuild.runtime.registry import ModelRuntimeError, ShapeMismatchError

ARRAY_DTYPES = {
    65568: np.dtype(np.float32),  # FLOAT32
    65600: np.dtype(np.float64),  # DOUBLE
    131104: np.dtype(np.int32),  # INT32
    131080: np.dtype(np.int8),  # INT8
    65552: np.dtype(np.float16),  # FLOAT16
}


def _color_space(image_type: Any) -> str:
    """The proto's name for the image's colour space (GRAYSCALE, RGB, BGR, GRAYSCALE_FLOAT16); RGB when unset."""
    value = image_type.DESCRIPTOR.fields_by_name["colorSpace"].enum_type.values_by_number.get(image_type.colorSpace)
    return value.name if value is not None and image_type.colorSpace else "RGB"


class InputError(ModelRuntimeError, ValueError):
    """The inputs given to `predict` do not match the model's declared inputs."""


@dataclass(frozen=True)
class FeatureDescription:
    """One input or output of a model, as its spec declares it.

    kind: "multiArray", "image", "double", "int64", "string", "dictionary", "sequence", "state".
    shape: the default shape (arrays) or (height, width) for images; () if undeclared.
    shape_ranges: per-dimension (lower, upper) bounds of a flexible array (upper -1 = unbounded),
        or for images ((h_lo, h_hi), (w_lo, w_hi)).
    enumerated_shapes: the allowed array shapes, or allowed (height, width) image sizes.
    """

    name: str
    kind: str
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None
    color_space: str | None = None
    shape_ranges: tuple[tuple[int, int], ...] | None = None
    enumerated_shapes: tuple[tuple[int, ...], ...] | None = None
    optional: bool = False
    short_description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_flexible(self) -> bool:
        return bool(self.shape_ranges or self.enumerated_shapes)

    def summary(self) -> str:
        """One line: name, type, shape and flexibility."""
        if self.kind == "image":
            text = f"{self.name}: image {self.color_space} {self.shape[1]}x{self.shape[0]} (WxH)"
        elif self.kind == "multiArray":
            dtype = self.dtype.name if self.dtype is not None else "?"
            text = f"{self.name}: multiArray {dtype} {list(self.shape)}"
        else:
            text = f"{self.name}: {self.kind}"
        if self.shape_ranges:
            text += f", ranges {[list(r) for r in self.shape_ranges]}"
        if self.enumerated_shapes:
            text += f", one of {[list(s) for s in self.enumerated_shapes]}"
        return text


def _describe_one(feature: Any) -> FeatureDescription:
    ftype = feature.type
    kind = ftype.WhichOneof("Type") or "undefined"
    common = dict(name=feature.name, optional=ftype.isOptional, short_description=feature.shortDescription)
    if kind == "multiArrayType":
        arr = ftype.multiArrayType
        flex = arr.WhichOneof("ShapeFlexibility")
        ranges = enumerated = None
        if flex == "shapeRange":
            ranges = tuple((int(r.lowerBound), int(r.upperBound)) for r in arr.shapeRange.sizeRanges)
        elif flex == "enumeratedShapes":
            enumerated = tuple(tuple(int(d) for d in s.shape) for s in arr.enumeratedShapes.shapes)
        return FeatureDescription(
            kind="multiArray", shape=tuple(int(d) for d in arr.shape),
            dtype=ARRAY_DTYPES.get(arr.dataType, np.dtype(np.float32)),
            shape_ranges=ranges, enumerated_shapes=enumerated, **common,
        )
    if kind == "imageType":
        img = ftype.imageType
        flex = img.WhichOneof("SizeFlexibility")
        ranges = enumerated = None
        if flex == "imageSizeRange":
            rng = img.imageSizeRange
            ranges = (
                (int(rng.heightRange.lowerBound), int(rng.heightRange.upperBound)),
                (int(rng.widthRange.lowerBound), int(rng.widthRange.upperBound)),
            )
        elif flex == "enumeratedSizes":
            enumerated = tuple((int(s.height), int(s.width)) for s in img.enumeratedSizes.sizes)
        return FeatureDescription(
            kind="image", shape=(int(img.height), int(img.width)),
            color_space=_color_space(img),
            shape_ranges=ranges, enumerated_shapes=enumerated, **common,
        )
    return FeatureDescription(kind=kind.removesuffix("Type"), **common)


def describe_features(features: Any) -> dict[str, FeatureDescription]:
    """name -> FeatureDescription for a repeated FeatureDescription proto field, in order."""
    return {f.name: _describe_one(f) for f in features}


def _within(value: int, bounds: tuple[int, int]) -> bool:
    low, high = bounds
    return value >= low and (high < 0 or value <= high)


def allowed_shapes_text(desc: FeatureDescription) -> str:
    """The shapes `desc` accepts, for error messages."""
    if desc.enumerated_shapes:
        return "one of " + ", ".join(str(list(s)) for s in desc.enumerated_shapes)
    if desc.shape_ranges:
        parts = [f"{lo}..{'inf' if hi < 0 else hi}" for lo, hi in desc.shape_ranges]
        return "[" + ", ".join(parts) + "]"
    return str(list(desc.shape))


def shape_is_allowed(desc: FeatureDescription, shape: tuple[int, ...]) -> bool:
    """Whether Core ML accepts an array of `shape` (or an image of (height, width)) for `desc`."""
    if desc.enumerated_shapes:
        return tuple(shape) in desc.enumerated_shapes
    if desc.shape_ranges:
        return len(shape) == len(desc.shape_ranges) and all(
            _within(d, r) for d, r in zip(shape, desc.shape_ranges)
        )
    if not desc.shape:
        return True
    return tuple(shape) == tuple(desc.shape)


def check_input_names(declared: dict[str, FeatureDescription], given: dict[str, Any]) -> None:
    """Refuse missing (non-optional) inputs and names the model does not declare."""
    missing = [n for n, d in declared.items() if n not in given and not d.optional]
    extra = [n for n in given if n not in declared]
    problems = []
    if missing:
        problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unknown input(s) {', '.join(map(repr, extra))}")
    if problems:
        raise InputError(
            f"The inputs do not match the model: {'; '.join(problems)}. "
            f"The model declares: {', '.join(repr(n) for n in declared)}."
        )


def check_array_shape(desc: FeatureDescription, shape: tuple[int, ...]) -> None:
    """Raise ShapeMismatchError if an array input of `shape` is outside the declared set."""
    if not shape_is_allowed(desc, shape):
        raise ShapeMismatchError(
            f"Input {desc.name!r} has shape {list(shape)}, but the model accepts "
            f"{allowed_shapes_text(desc)}."
        )


def check_image_size(desc: FeatureDescription, height: int, width: int) -> None:
    """Raise ShapeMismatchError if an image of height x width is outside the declared sizes."""
    if not shape_is_allowed(desc, (height, width)):
        raise ShapeMismatchError(
            f"Input image {desc.name!r} is {width}x{height} (WxH), but the model accepts "
            f"(height, width) {allowed_shapes_text(desc)}."
        )
