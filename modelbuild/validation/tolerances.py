"""Tolerances: the recipe's per-artifact limits, or defaults that suit the artifact's precision."""
from __future__ import annotations

import math

from modelbuild.recipe.schema import Tolerance
from modelbuild.validation.report import Check

FLOAT32_DEFAULT = Tolerance(max_abs_of_range=1e-4)
FLOAT32_CLASSIFIER_DEFAULT = Tolerance(max_abs_of_range=1e-4, min_top1=1.0)
FLOAT32_IMAGE_DEFAULT = Tolerance(max_abs=1.0)  # one pixel level: rounding may flip by one
FLOAT16_DEFAULT = Tolerance(min_psnr=40.0)


def default_tolerance(precision: str, image_output: bool, classifier: bool = False) -> Tolerance:
    """The limit used when the recipe names none for an artifact."""
    if precision == "float16":
        return FLOAT16_DEFAULT
    if image_output:
        return FLOAT32_IMAGE_DEFAULT
    return FLOAT32_CLASSIFIER_DEFAULT if classifier else FLOAT32_DEFAULT


def max_rel(figures: dict[str, float]) -> float:
    """The largest difference as a fraction of the reference's scale (from the figures, or computed)."""
    if "max_rel" in figures:
        return figures["max_rel"]
    if figures["scale"] == 0:
        return 0.0 if figures["max_abs"] == 0 else math.inf
    return figures["max_abs"] / figures["scale"]


def checks(tolerance: Tolerance, figures: dict[str, float]) -> list[Check]:
    """The checks a tolerance asks for, on the figures of one comparison."""
    result = []
    if tolerance.max_abs is not None:
        result.append(Check("max_abs", figures["max_abs"], tolerance.max_abs, "max"))
    if tolerance.max_abs_of_range is not None:
        result.append(Check("max_rel", max_rel(figures), tolerance.max_abs_of_range, "max"))
    if tolerance.min_top1 is not None and "top1" in figures:
        result.append(Check("top1", figures["top1"], tolerance.min_top1, "min"))
    if tolerance.min_psnr is not None:
        value = 1e9 if figures["psnr"] == math.inf else figures["psnr"]  # identical outputs; NaN stays NaN: fails
        result.append(Check("psnr", value, tolerance.min_psnr, "min"))
    return result
