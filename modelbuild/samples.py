"""A recipe's samples: image files fitted to the image-shaped inputs, generated values elsewhere.

What validation and the agreement matrix compare the artifacts on, and what calibration
measures (torch::calibrate's norm statistics, a compression section's activations and palettes).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from modelbuild.feeds import generated_inputs
from modelbuild.metrics import add_gaussian_noise
from modelbuild.recipe import Recipe
from modelbuild.recipe.shapes import shape_sets


@dataclass(frozen=True)
class Sample:
    """One set of model inputs (float32 arrays in model units) and, for the denoise metric, the clean image."""

    name: str
    feeds: dict[str, np.ndarray]
    clean: np.ndarray | None = None
    picture: np.ndarray | None = field(default=None, repr=False)  # [H, W, C] uint8 shown in the report
    shape_label: str = "default"  # which of the flexible-shape test sets the feeds belong to


def image_shaped_inputs(recipe: Recipe) -> list[str]:
    """Float inputs shaped [1, 1 or 3, H, W]: the ones sample images are fed to."""
    return [name for name, spec in recipe.inputs.items()
            if len(spec.shape) == 4 and spec.shape[0] == 1 and spec.shape[1] in (1, 3) and spec.dtype.startswith("float")]


def load_picture(path: Path, channels: int, height: int, width: int) -> np.ndarray:
    """The image at `path`, centre-cropped to the aspect ratio and resized to height x width, as uint8 HWC."""
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    scale = min(image.width / width, image.height / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def make_samples(recipe: Recipe, root: Path) -> list[Sample]:
    """The validation samples of a recipe: every sample at every flexible-shape test set (with noise added
    when the recipe declares the denoise metric)."""
    sets = shape_sets(recipe)
    samples = []
    for label, shapes in sets:
        suffix = "" if len(sets) == 1 else f" @ {label} " + "x".join(map(str, next(iter(shapes.values()))[-2:]))
        samples += [replace(s, name=s.name + suffix, shape_label=label) for s in _samples_at(recipe, root, shapes)]
    return [_with_noise(recipe, s) for s in samples] if recipe.validate_.denoise else samples


def _samples_at(recipe: Recipe, root: Path, shapes: dict[str, list[int]]) -> list[Sample]:
    config = recipe.validate_
    targets = image_shaped_inputs(recipe)
    if not (config.samples and targets):
        return [Sample(f"random-{i}", generated_inputs(recipe, i, shapes)) for i in range(config.random_samples)]
    samples = []
    for index, file in enumerate(config.samples):
        feeds = generated_inputs(recipe, index, shapes)
        picture = None
        for name in targets:
            _, channels, height, width = shapes[name]
            picture = load_picture(root / file, channels, height, width)
            low, high = recipe.inputs[name].range
            feeds[name] = (low + (high - low) * picture.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
                           ).astype(recipe.inputs[name].dtype)
        samples.append(Sample(Path(file).name, feeds, picture=picture))
    return samples


def _with_noise(recipe: Recipe, sample: Sample) -> Sample:
    denoise = recipe.validate_.denoise
    clean = sample.feeds[denoise.image]
    feeds = dict(sample.feeds)
    feeds[denoise.image] = add_gaussian_noise(clean, denoise.sigma / 255.0, seed=denoise.seed)
    if denoise.sigma_input is not None:
        feeds[denoise.sigma_input] = np.full(recipe.inputs[denoise.sigma_input].shape, denoise.sigma / 255.0,
                                             np.float32)
    return replace(sample, name=f"{sample.name} (sigma {denoise.sigma:g})", feeds=feeds, clean=clean)
