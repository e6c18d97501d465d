"""Tolerances: the recipe's per-artifact limits, or defaults that suit the artifact's precision,
or, for a compressed variant, defaults that judge its task by how much it compresses."""
from __future__ import annotations

import math

from modelbuild.recipe.compression import Compression
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


# A compressed variant is judged on what it is for: its classes (top-1 agreement with PyTorch over the
# samples), its denoising (mean PSNR against the clean image, within N dB of PyTorch's), else the PSNR
# of its output. The limits loosen with the bits left per weight.
COMPRESSED_DEFAULTS = {  # bits per weight (at least) -> (min_psnr, min_top1, max_denoise_drop)
    8: (30.0, 1.0, 0.5),
    6: (25.0, 0.75, 0.5),
    0: (15.0, 0.5, 1.5),
}


def compressed_tolerance(compression: Compression, classifier: bool, denoise: bool) -> Tolerance:
    """The default limits of a compressed variant (see COMPRESSED_DEFAULTS)."""
    bits = weight_bits(compression)
    min_psnr, min_top1, max_drop = next(limits for floor, limits in COMPRESSED_DEFAULTS.items() if bits >= floor)
    if classifier:
        return Tolerance(min_top1=min_top1)
    if denoise:
        return Tolerance(min_psnr=min_psnr, max_denoise_drop=max_drop)
    return Tolerance(min_psnr=min_psnr)


def weight_bits(compression: Compression) -> int:
    """The bits a compressed weight keeps per value: the fewest of its methods (pruning counts as 0,
    int8 activations as 8)."""
    bits = [8]
    if compression.quantize is not None:
        bits.append(4 if compression.quantize.dtype.endswith("4") else 8)
    if compression.palettize is not None:
        bits.append(compression.palettize.nbits)
    if compression.prune is not None:
        bits.append(0)
    return min(bits)


def tolerance_for(recipes_tolerances: dict[str, Tolerance], artifact: str, precision: str,
                  compression: Compression | None, image_output: bool, classifier: bool, denoise: bool) -> Tolerance:
    """The recipe's tolerance for the artifact, else the default of its compression, else of its precision."""
    if artifact in recipes_tolerances:
        return recipes_tolerances[artifact]
    if compression is not None:
        return compressed_tolerance(compression, classifier, denoise)
    return default_tolerance(precision, image_output, classifier)


def max_rel(figures: dict[str, float]) -> float:
    """The largest difference as a fraction of the reference's scale (from the figures, or computed)."""
    if "max_rel" in figures:
        return figures["max_rel"]
    if figures["scale"] == 0:
        return 0.0 if figures["max_abs"] == 0 else math.inf
    return figures["max_abs"] / figures["scale"]


def checks(tolerance: Tolerance, figures: dict[str, float]) -> list[Check]:
    """The checks a tolerance asks for, on the figures of one comparison (a fraction of top-1 agreement
    and a denoising drop are judged over all samples, by `over_samples`)."""
    result = []
    if tolerance.max_abs is not None:
        result.append(Check("max_abs", figures["max_abs"], tolerance.max_abs, "max"))
    if tolerance.max_abs_of_range is not None:
        result.append(Check("max_rel", max_rel(figures), tolerance.max_abs_of_range, "max"))
    if tolerance.min_top1 in (0.0, 1.0) and "top1" in figures:  # else judged over all samples
        result.append(Check("top1", figures["top1"], tolerance.min_top1, "min"))
    if tolerance.min_psnr is not None:
        value = 1e9 if figures["psnr"] == math.inf else figures["psnr"]  # identical outputs; NaN stays NaN: fails
        result.append(Check("psnr", value, tolerance.min_psnr, "min"))
    return result


def over_samples(tolerance: Tolerance, top1: list[float], denoise_drops: list[float]) -> list[Check]:
    """The checks judged over every sample of an artifact: the fraction of samples with PyTorch's top-1
    class (when the limit is neither 0 nor 1), and the mean denoising PSNR drop against PyTorch."""
    result = []
    if tolerance.min_top1 is not None and tolerance.min_top1 not in (0.0, 1.0) and top1:
        result.append(Check("top1_rate", sum(top1) / len(top1), tolerance.min_top1, "min"))
    if tolerance.max_denoise_drop is not None and denoise_drops:
        result.append(Check("denoise_drop", sum(denoise_drops) / len(denoise_drops), tolerance.max_denoise_drop,
                            "max"))
    return result
