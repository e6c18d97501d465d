"""Figures that compare outputs: max abs / relative error, PSNR, and the denoising task metric."""
from __future__ import annotations

import numpy as np


def max_abs_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest |actual - expected| (float64 arithmetic)."""
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)), initial=0.0))


def scale(reference: np.ndarray) -> float:
    """The size of a reference output: the larger of its value range and its largest magnitude.

    Errors are judged against it: float rounding grows with magnitude, and a difference
    matters in proportion to how much the output varies.
    """
    values = np.asarray(reference, np.float64)
    if values.size == 0:
        return 0.0
    return float(max(values.max() - values.min(), np.abs(values).max()))


def max_relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest |actual - expected| as a fraction of the reference's scale (inf when the reference is all zero
    and they differ, 0 when they agree)."""
    worst, size = max_abs_error(actual, expected), scale(expected)
    if size == 0:
        return 0.0 if worst == 0 else float("inf")
    return worst / size


def psnr(actual: np.ndarray, expected: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical arrays)."""
    mse = float(np.mean((np.asarray(actual, np.float64) - np.asarray(expected, np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(peak * peak / mse) if peak > 0 else float("-inf")


def add_gaussian_noise(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """clean + N(0, sigma^2) noise drawn with torch's generator (seeded), as float32.

    torch's generator makes the figures match the FFDNet reference measurements.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32).numpy() * np.float32(sigma)
    return clean.astype(np.float32) + noise
