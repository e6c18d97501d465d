"""What a Core ML model's inputs, outputs and metadata should look like.

Plain frozen dataclasses, independent of the recipe schema: the build task
translates a recipe into these and `modelbuild.coreml.conversion` makes the
converted model match them. Image scale and bias follow Core ML's
`ImageScaler` semantics, y = scale * pixel + bias per channel, with the bias
in the tensor's channel order (R, G, B for RGB; B, G, R for BGR; one value
for GRAYSCALE). For an image output the same formula turns the model's
tensor into pixel values (e.g. scale 255 for a model that outputs [0, 1]).
"""
from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass, field
from typing import Literal, Union

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.flexible import Flexible, check_flexible

ColorLayout = Literal["RGB", "BGR", "GRAYSCALE"]
Dtype = Literal["float32", "float16", "int32", "int64", "bool"]
COLOR_LAYOUTS: dict[str, int] = {"RGB": 3, "BGR": 3, "GRAYSCALE": 1}  # layout -> channels
FEATURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ImageInput:
    """Declare a model input as an image: tensor = (scale * pixel + bias[c]) * channel_scale[c].

    `channel_scale` (None: all 1) is what Core ML's own preprocessing cannot
    express; it becomes a `mul` op at the start of the graph.
    """

    scale: float = 1.0
    bias: tuple[float, ...] = (0.0, 0.0, 0.0)
    color_layout: ColorLayout = "RGB"
    channel_scale: tuple[float, ...] | None = None

    @classmethod
    def from_mean_std(cls, mean: tuple[float, ...], std: tuple[float, ...], *, pixel_scale: float = 1 / 255,
                      color_layout: ColorLayout = "RGB") -> "ImageInput":
        """tensor = (pixel_scale * pixel - mean[c]) / std[c], e.g. torchvision's ImageNet normalisation.

        `mean` and `std` are in the tensor's channel order (B, G, R for BGR).
        """
        return cls(scale=pixel_scale, bias=tuple(-float(m) for m in mean), color_layout=color_layout,
                   channel_scale=tuple(1 / float(s) if s else float("inf") for s in std))


@dataclass(frozen=True)
class ImageOutput:
    """Declare a model output as an image: pixel = scale * tensor + bias (per channel)."""

    scale: float = 1.0
    bias: tuple[float, ...] = (0.0, 0.0, 0.0)
    color_layout: ColorLayout = "RGB"


ImageSpec = Union[ImageInput, ImageOutput]


@dataclass(frozen=True)
class FeatureSpec:
    """One model input or output: its Core ML name, (default) shape, description, image-ness.

    `flexible` (inputs only) lets the input take other shapes too; `shape` is
    then the default one (see `modelbuild.coreml.flexible`).
    """

    name: str
    shape: tuple[int, ...]
    description: str = ""
    image: ImageInput | ImageOutput | None = None
    flexible: Flexible | None = None
    dtype: Dtype = "float32"  # inputs: the element type the model takes (see `coreml_array_type`)


def example_tensors(inputs: list[FeatureSpec]) -> tuple:
    """Ones of each input's declared (default) shape and dtype: what a torch model is captured on."""
    import torch

    return tuple(torch.ones(feature.shape, dtype=getattr(torch, feature.dtype)) for feature in inputs)


def coreml_array_type(dtype: Dtype) -> str:
    """The multi-array type Core ML gets for an input of `dtype`: Core ML has no int64 or bool arrays, so
    those become INT32 (an ML Program casts them back; a NeuralNetwork computes in float and declares
    FLOAT32 instead); float16 stays FLOAT16 (ML Program, iOS16 and later)."""
    return {"float32": "FLOAT32", "float16": "FLOAT16"}.get(dtype, "INT32")


@dataclass(frozen=True)
class Metadata:
    """The Core ML model metadata (Xcode shows it on the model's General tab)."""

    short_description: str = ""
    author: str = ""
    license: str = ""
    version: str = ""
    user_defined: dict[str, str] = field(default_factory=dict)


def channel_biases(image: ImageSpec) -> tuple[float, ...]:
    """The per-channel bias of `image`, one value per channel of its color layout.

    A single value is accepted for colour layouts too and applies to all three
    channels; the default (0, 0, 0) is accepted for GRAYSCALE as no bias.
    """
    channels = COLOR_LAYOUTS[image.color_layout]
    bias = tuple(float(b) for b in image.bias)
    if len(bias) == channels:
        return bias
    if len(bias) == 1 or (channels == 1 and bias == (0.0, 0.0, 0.0)):
        return (bias[0],) * channels
    raise CoreMLBuildError(
        f"An image bias of {len(bias)} values {bias!r} does not fit color layout "
        f"{image.color_layout!r}: give {channels} value(s), one per channel, or a single value."
    )


def channel_scales(image: ImageInput) -> tuple[float, ...]:
    """The per-channel factor applied after scale and bias, one value per channel (1s when unset)."""
    channels = COLOR_LAYOUTS[image.color_layout]
    if image.channel_scale is None:
        return (1.0,) * channels
    factors = tuple(float(f) for f in image.channel_scale)
    if len(factors) == channels:
        return factors
    if len(factors) == 1:
        return factors * channels
    raise CoreMLBuildError(
        f"An image channel_scale of {len(factors)} values {factors!r} does not fit color layout "
        f"{image.color_layout!r}: give {channels} value(s), one per channel, or a single value."
    )


def check_features(features: list[FeatureSpec], role: Literal["input", "output"]) -> None:
    """Raise CoreMLBuildError for a feature list that no Core ML model can have."""
    seen: set[str] = set()
    for feature in features:
        if not isinstance(feature.name, str) or not FEATURE_NAME.match(feature.name):
            raise CoreMLBuildError(
                f"Core ML {role} name {feature.name!r} is not valid: names must match "
                "[A-Za-z_][A-Za-z0-9_]* (ML Program refuses anything else)."
            )
        if feature.name in seen:
            raise CoreMLBuildError(f"Core ML {role} name {feature.name!r} is given twice.")
        seen.add(feature.name)
        if not feature.shape or any(not isinstance(d, int) or d < 1 for d in feature.shape):
            raise CoreMLBuildError(
                f"{role.capitalize()} {feature.name!r} has shape {tuple(feature.shape)!r}: "
                "give a static shape of positive integers."
            )
        if feature.dtype not in typing.get_args(Dtype):
            raise CoreMLBuildError(f"{role.capitalize()} {feature.name!r} has dtype {feature.dtype!r}; expected one "
                                   f"of {', '.join(typing.get_args(Dtype))}.")
        if feature.image is not None:
            if feature.dtype != "float32":
                raise CoreMLBuildError(f"Image {role} {feature.name!r} has dtype {feature.dtype}; image features "
                                       "are float32 tensors of pixel values.")
            _check_image(feature, role)
        check_flexible(feature, role)


def _check_image(feature: FeatureSpec, role: str) -> None:
    image = feature.image
    expected_kind = ImageInput if role == "input" else ImageOutput
    if not isinstance(image, expected_kind):
        raise CoreMLBuildError(
            f"{role.capitalize()} {feature.name!r} declares {type(image).__name__}; "
            f"an {role} image must be declared with {expected_kind.__name__}."
        )
    if image.color_layout not in COLOR_LAYOUTS:
        raise CoreMLBuildError(
            f"Image {role} {feature.name!r} has color layout {image.color_layout!r}; "
            f"expected one of {', '.join(COLOR_LAYOUTS)}."
        )
    channels = COLOR_LAYOUTS[image.color_layout]
    shape = tuple(feature.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[1] != channels:
        raise CoreMLBuildError(
            f"Image {role} {feature.name!r} has shape {shape!r}; a {image.color_layout} image "
            f"must be a tensor of shape (1, {channels}, height, width)."
        )
    if not math.isfinite(image.scale) or image.scale == 0:
        raise CoreMLBuildError(
            f"Image {role} {feature.name!r} has scale {image.scale!r}; give a finite, non-zero number."
        )
    if not all(math.isfinite(b) for b in channel_biases(image)):
        raise CoreMLBuildError(f"Image {role} {feature.name!r} has a non-finite bias {image.bias!r}.")
    if isinstance(image, ImageInput) and not all(math.isfinite(f) and f != 0 for f in channel_scales(image)):
        raise CoreMLBuildError(
            f"Image input {feature.name!r} has channel_scale {image.channel_scale!r}; give finite, non-zero "
            "numbers (for a normalisation by std, channel_scale is 1 / std)."
        )
