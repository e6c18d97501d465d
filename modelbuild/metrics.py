"""Figures that compare outputs: max abs / relative error, PSNR, and the denoising task metric."""
from __future__ import annotations

import numpy as np


def max_abs_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest |actual - expected| (float64 arithmetic)."""
    return float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))))


def max_relative_error(actual: np.ndarray, expected: np.ndarray, floor: float = 1e-6) -> float:
    """Largest |actual - expected| / max(|expected|, floor)."""
    expected = np.asarray(expected, np.float64)
    diff = np.abs(np.asarray(actual, np.float64) - expected)
    return float(np.max(diff / np.maximum(np.abs(expected), floor)))


def psnr(actual: np.ndarray, expected: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical arrays)."""
    mse = float(np.mean((np.asarray(actual, np.float64) - np.asarray(expected, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def add_gaussian_noise(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """clean + N(0, sigma^2) noise drawn with torch's generator (seeded), as float32.

    torch's generator makes the figures match the FFDNet reference measurements.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32).numpy() * np.float32(sigma)
    return clean.astype(np.float32) + noise
