"""PIL images <-> float arrays in a Core ML image feature's colour layout.

Core ML feeds an image input to the network as a float array with channels
first: RGB and BGR images as [3, H, W] in that channel order, GRAYSCALE as
[1, H, W], all with raw 0..255 values (the model's own preprocessing scales them).
An image output is clipped to 0..255 and rounded to uint8.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from modelbuild.runtime.features import FeatureDescription, InputError, check_image_size


def image_to_array(image: Any, desc: FeatureDescription) -> np.ndarray:
    """A PIL image as a float32 array [C, H, W] in `desc`'s colour layout (0..255)."""
    if not isinstance(image, Image.Image):
        raise InputError(
            f"Input {desc.name!r} is an image feature; pass a PIL.Image.Image, "
            f"not {type(image).__name__}."
        )
    check_image_size(desc, image.height, image.width)
    space = desc.color_space or "RGB"
    if space == "GRAYSCALE_FLOAT16":
        data = np.asarray(image.convert("F"), dtype=np.float32)[None]
        return data.astype(np.float16).astype(np.float32)
    if space == "GRAYSCALE":
        return np.asarray(image.convert("L"), dtype=np.float32)[None]
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    return np.ascontiguousarray(rgb[::-1]) if space == "BGR" else rgb


def array_to_image(array: np.ndarray, desc: FeatureDescription) -> Image.Image:
    """A network output ([..., C, H, W]) as a PIL image in `desc`'s colour layout."""
    data = np.asarray(array, dtype=np.float32)
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(
            f"Output {desc.name!r} is declared as an image but the network produced shape "
            f"{list(np.shape(array))}; expected [C, H, W] with leading 1s."
        )
    space = desc.color_space or "RGB"
    if space == "GRAYSCALE_FLOAT16":
        return Image.fromarray(data[0].astype(np.float32), mode="F")
    pixels = np.clip(np.round(data), 0, 255).astype(np.uint8)
    if space == "GRAYSCALE":
        return Image.fromarray(pixels[0], mode="L")
    if space == "BGR":
        pixels = pixels[::-1]
    return Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), mode="RGB")
