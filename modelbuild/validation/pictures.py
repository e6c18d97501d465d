"""Pictures for the HTML report: inputs, outputs and error heatmaps, small uint8 arrays."""
from __future__ import annotations

import numpy as np
from PIL import Image

from modelbuild.recipe import Recipe

MAX_SIDE = 256
# Anchors of a dark-to-bright colormap (black, purple, red, orange, pale yellow) for error heatmaps.
_ANCHORS = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float32)


def is_picture(array: np.ndarray) -> bool:
    """[1, 1 or 3, H, W] arrays are shown as pictures."""
    return array.ndim == 4 and array.shape[0] == 1 and array.shape[1] in (1, 3)


def to_uint8(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """[1, C, H, W] values in [low, high] -> a small HWC uint8 picture."""
    scaled = np.clip((array[0].transpose(1, 2, 0) - low) / max(high - low, 1e-12), 0, 1) * 255
    return shrink(np.rint(scaled).astype(np.uint8))


def shrink(picture: np.ndarray) -> np.ndarray:
    """Downscale an HWC uint8 picture so that its longer side is at most MAX_SIDE."""
    height, width = picture.shape[:2]
    factor = MAX_SIDE / max(height, width)
    if factor >= 1:
        return picture
    image = Image.fromarray(picture[:, :, 0] if picture.shape[2] == 1 else picture)
    small = np.asarray(image.resize((max(1, round(width * factor)), max(1, round(height * factor))),
                                    Image.Resampling.BOX))
    return small[:, :, None] if small.ndim == 2 else small


def heatmap(error: np.ndarray, scale: float) -> np.ndarray:
    """|error| [1, C, H, W] averaged over channels, divided by `scale`, through the colormap (HWC uint8)."""
    magnitude = np.clip(np.abs(error[0]).mean(axis=0) / max(scale, 1e-30), 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(magnitude).astype(int).clip(0, len(_ANCHORS) - 2)
    t = (magnitude - low)[..., None]
    colours = _ANCHORS[low] * (1 - t) + _ANCHORS[low + 1] * t
    return shrink(np.rint(colours).astype(np.uint8))


def add_sample(report, recipe: Recipe, sample, torch_outputs: dict[str, np.ndarray]) -> None:
    """Record a sample's input picture, clean picture and the PyTorch output picture."""
    entry = report.pictures.setdefault(sample.name, {"artifacts": {}})
    for name, value in sample.feeds.items():
        if is_picture(value):
            low, high = recipe.inputs[name].range
            entry["input"] = to_uint8(value, low, high)
            if sample.clean is not None:
                entry["clean"] = to_uint8(sample.clean, low, high)
            break
    output = next(iter(torch_outputs.values()))
    if is_picture(output):
        entry["range"] = (float(output.min()), float(output.max()))
        entry["artifacts"]["torch"] = {"output": to_uint8(output, *entry["range"])}


def add_artifact(report, sample, name: str, outputs: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Record an artifact's output picture and its error heatmap against PyTorch."""
    entry = report.pictures.get(sample.name, {})
    if "range" not in entry or not outputs:
        return
    output_name = next(iter(expected))
    got, ref = outputs.get(output_name), expected[output_name]
    if got is None or got.shape != ref.shape:
        return
    error = got - ref
    scale = float(np.abs(error).mean(axis=1).max())
    entry["artifacts"][name] = {"output": to_uint8(got, *entry["range"]), "error": heatmap(error, scale),
                                "error_scale": scale}
