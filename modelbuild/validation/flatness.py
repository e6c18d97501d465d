"""Flat references: outputs that carry no information, so that agreeing with them proves nothing.

A model with a random initialisation often computes almost nothing: MobileNetV3's logits come out
around 1e-10, a zero-initialised head gives zeros, some outputs do not depend on the input at all.
Every artifact then "matches" the reference (or fails in float16 for no real reason), and the
verdict means nothing. Such an output is reported as its own failure, with the fix.
"""
from __future__ import annotations

import numpy as np

from modelbuild import metrics

VANISHING = 1e-6  # an output whose every value is smaller than this carries nothing float16 can hold
SAME_ACROSS_SAMPLES = 1e-6  # relative spread under which an output does not depend on its input


def flatness(outputs: list[np.ndarray]) -> str | None:
    """Why one output, computed on several input sets (same shape), is flat; None when it is not."""
    size = max(metrics.scale(value) for value in outputs)
    if size == 0:
        return "is zero everywhere on every sample"
    if size < VANISHING:
        return f"is below {VANISHING:g} everywhere (largest |value| {size:.2g})"
    if len(outputs) > 1:
        spread = max(metrics.max_abs_error(value, outputs[0]) for value in outputs[1:])
        if spread <= SAME_ACROSS_SAMPLES * size:
            return f"is the same on all {len(outputs)} input sets (they differ by {spread:.2g} at most)"
    return None


def flat_outputs(per_sample: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, str]:
    """name -> why it is flat, for the outputs among `names` that are flat across the input sets.

    Input sets of different shapes (flexible inputs) are compared within each shape only.
    """
    flat = {}
    for name in names:
        groups: dict[tuple, list[np.ndarray]] = {}
        for outputs in per_sample:
            value = np.asarray(outputs[name], np.float64)
            groups.setdefault(value.shape, []).append(value)
        reasons = [flatness(group) for group in groups.values()]
        if all(reasons):
            flat[name] = reasons[0]
    return flat


def fix_for(recipe) -> str:
    """What to change in the recipe so that the reference computes something."""
    if recipe.model.onnx is not None:
        return ("check the source ONNX file's weights, or list the output in validate.allow_flat if it "
                "is meant to be constant")
    return ("give model.weights, or add the calibrated initialisation (model.patches: [{step: torch::calibrate}]), "
            "or list the output in validate.allow_flat if it is meant to be constant")
