"""A Core ML variant's inputs and outputs as `modelbuild.coreml` FeatureSpecs.

The one translation from the recipe's `inputs`, `outputs` and a variant's image and
flexible-shape settings to what the Core ML conversion takes: the recipe checks ask
`modelbuild.coreml.flexible_support_problem` about it before anything is built, and the
Core ML stage converts with it.
"""
from __future__ import annotations

from modelbuild.coreml import FeatureSpec, ImageInput, ImageOutput
from modelbuild.coreml.flexible import Enumerated, Flexible, Range
from modelbuild.recipe.schema import Input, Recipe


def input_features(recipe: Recipe, variant: str) -> list[FeatureSpec]:
    """The recipe's inputs as FeatureSpecs (images where the variant says so)."""
    images = recipe.coreml[variant].image_inputs
    fixed = recipe.coreml[variant].fixed_shape
    features = []
    for name, spec in recipe.inputs.items():
        image = images.get(name)
        features.append(FeatureSpec(
            name=name, shape=tuple(spec.shape), description=spec.description,
            image=None if image is None else ImageInput(
                scale=image.scale, bias=_bias(image), color_layout=image.color_layout,
                channel_scale=None if image.channel_scale is None else tuple(image.channel_scale)),
            flexible=None if fixed else flexible_shapes(spec), dtype=spec.dtype))
    return features


def flexible_shapes(spec: Input) -> Flexible | None:
    """An input's flexible shapes as a modelbuild.coreml Range or Enumerated (None when it has none)."""
    if spec.flexible is None:
        return None
    if spec.flexible.enumerated is not None:
        return Enumerated(shapes=tuple(tuple(s) for s in spec.flexible.enumerated), default=tuple(spec.shape))
    return Range(dim_ranges=tuple((low_high[0], low_high[1], size) if (low_high := spec.flexible.range.get(d))
                                  else None for d, size in enumerate(spec.shape)))


def output_features(recipe: Recipe, variant: str, shapes: dict[str, tuple[int, ...]]) -> list[FeatureSpec]:
    """The recipe's outputs as FeatureSpecs of the given shapes (images where the variant says so)."""
    images = recipe.coreml[variant].image_outputs
    features = []
    for name, spec in recipe.outputs.items():
        image = images.get(name)
        features.append(FeatureSpec(
            name=name, shape=shapes[name], description=spec.description,
            image=None if image is None else ImageOutput(
                scale=image.scale, bias=_bias(image), color_layout=image.color_layout)))
    return features


def output_features_without_shapes(recipe: Recipe, variant: str) -> list[FeatureSpec]:
    """The outputs' names and image declarations (what the route checks look at), shapes left empty."""
    return output_features(recipe, variant, {name: () for name in recipe.outputs})


def _bias(image) -> tuple[float, ...]:
    channels = 1 if image.color_layout == "GRAYSCALE" else 3
    return tuple(image.bias) if image.bias is not None else (0.0,) * channels
