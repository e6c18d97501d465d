"""k-means palettes: as good as scikit-learn's KMeans (what coremltools uses), exact when they can be."""
from __future__ import annotations

import time

import numpy as np
import pytest

from modelbuild.coreml.kmeans import kmeans_palette, nearest, sum_of_squares


def _weights(kind: str, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(size).astype(np.float32) * 0.05
    if kind == "heavy tails":
        return rng.standard_t(3, size).astype(np.float32) * 0.02
    return np.concatenate([rng.normal(-1, 0.1, size // 2), rng.normal(2, 0.3, size - size // 2)]).astype(np.float32)


@pytest.mark.parametrize("kind", ["normal", "heavy tails", "two modes"])
@pytest.mark.parametrize("nbits", [2, 4, 6])
def test_palette_is_as_good_as_scikit_learn(kind, nbits):
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    values = _weights(kind, 20000)
    palette, indices = kmeans_palette(values, 2**nbits)
    mine = sum_of_squares(values, palette, indices)
    theirs = sklearn_cluster.KMeans(2**nbits, n_init=4, random_state=0).fit(values.reshape(-1, 1).astype(np.float64))
    print(f"{kind}, {nbits} bits: sum of squares {mine:.6g} (scikit-learn {theirs.inertia_:.6g})")
    assert np.all(np.diff(palette) >= 0)
    assert np.array_equal(indices, nearest(values, palette))
    assert mine <= theirs.inertia_ * 1.001


def test_few_distinct_values_are_kept_exactly():
    values = np.array([0.5, -1.0, 0.5, 3.0, -1.0], np.float32)
    palette, indices = kmeans_palette(values, 4)
    assert np.array_equal(palette[indices], values)


def test_palette_is_reproducible_and_fast_on_a_large_weight():
    values = _weights("heavy tails", 2_359_296)  # ResNet50's largest convolution (512 x 512 x 3 x 3)
    started = time.perf_counter()
    first = kmeans_palette(values, 64)
    seconds = time.perf_counter() - started
    print(f"64-entry palette of 2.36M values in {seconds:.2f} s")
    second = kmeans_palette(values, 64)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert seconds < 10
