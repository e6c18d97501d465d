"""k-means palettes for weights: Lloyd's algorithm in one dimension, on sorted values.

In one dimension every k-means cluster is an interval of the sorted values, so a Lloyd
iteration is a binary search for the k - 1 boundaries (midpoints between neighbouring
centroids) and one mean per interval from prefix sums: O(k log n) once the values are
sorted, where scikit-learn's KMeans (what coremltools calls) costs O(n k) per iteration
and takes minutes on ResNet50. Lloyd's iterations stop in a local minimum that depends on
where they start, so many starts are tried on a fine histogram of the values (quantiles,
evenly spaced values that reach the tails, and seeded k-means++ draws), and the best one
is refined on the values themselves. Everything is seeded: the palette is reproducible.
"""
from __future__ import annotations

import numpy as np

MAX_ITERATIONS = 300
HISTOGRAM_BINS = 1 << 12
RANDOM_STARTS = 4
# A small weight (one output channel's palette: few values per entry, and a thousand calls for FFDNet)
# takes half the random starts: FFDNet's 6-bit channel palettes in 10 s instead of 20 s, for 0.33 dB of
# denoising below fp32 instead of 0.28 (with the official weights).
SMALL_WEIGHT_PER_ENTRY, SMALL_WEIGHT_STARTS = 32, 2
SEED = 0


def kmeans_palette(values: np.ndarray, size: int,
                   importance: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(palette of `size` values, ascending; the index of each value's nearest entry, flat int64).

    `importance` (same shape, >= 0): how much each value's error counts; the palette then minimises
    the importance-weighted squared error (e.g. a weight times the energy of the input it multiplies).
    """
    flat = np.asarray(values, np.float64).reshape(-1)
    if flat.size == 0:
        raise ValueError("a k-means palette needs at least one value")
    weights = (np.ones_like(flat) if importance is None
               else np.broadcast_to(np.asarray(importance, np.float64), np.shape(values)).reshape(-1))
    order = np.argsort(flat, kind="stable")
    ordered, ordered_weights = flat[order], weights[order]
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    if np.count_nonzero(first) <= size:  # every value gets its own entry: exact
        distinct = ordered[first]
        palette = np.concatenate([distinct, np.full(size - distinct.size, distinct[-1])])
        return palette, np.searchsorted(distinct, flat)
    ordered_weights = np.maximum(ordered_weights, 1e-12 * max(float(ordered_weights.max()), 1e-300))
    histogram = _Points.histogram(ordered, ordered_weights)
    start = min((histogram.lloyd(s) for s in _starts(histogram, size)), key=lambda found: found[1])[0]
    palette, _ = _Points(ordered, ordered_weights).lloyd(start)
    return palette, nearest(flat, palette)


def nearest(values: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of an ascending palette for each value (a tie goes to the lower entry)."""
    boundaries = (palette[1:] + palette[:-1]) / 2
    return np.searchsorted(boundaries, values, side="left")


def sum_of_squares(values: np.ndarray, palette: np.ndarray, indices: np.ndarray,
                   importance: np.ndarray | None = None) -> float:
    """Within-cluster sum of (importance-weighted) squared distances: what k-means minimises."""
    flat = np.asarray(values, np.float64).reshape(-1)
    errors = (flat - np.asarray(palette, np.float64)[np.asarray(indices).reshape(-1)]) ** 2
    if importance is not None:
        errors = errors * np.broadcast_to(np.asarray(importance, np.float64), np.shape(values)).reshape(-1)
    return float(np.sum(errors))


class _Points:
    """Ascending values with weights (counts), and the prefix sums that make interval means O(1)."""

    def __init__(self, values: np.ndarray, weights: np.ndarray, squares: np.ndarray | None = None) -> None:
        self.values, self.weights = values, weights
        self.count = np.concatenate([[0.0], np.cumsum(weights)])
        self.sum = np.concatenate([[0.0], np.cumsum(weights * values)])
        self.square = np.concatenate([[0.0], np.cumsum(weights * values**2 if squares is None else squares)])

    @classmethod
    def histogram(cls, ordered: np.ndarray, weights: np.ndarray) -> "_Points":
        """The values grouped in HISTOGRAM_BINS equal-width bins: each non-empty bin is its weighted mean,
        weighted by its total weight (and keeps its exact weighted sum of squares)."""
        width = (ordered[-1] - ordered[0]) / HISTOGRAM_BINS
        bins = np.minimum(((ordered - ordered[0]) / width).astype(np.int64), HISTOGRAM_BINS - 1)
        starts = np.flatnonzero(np.diff(bins, prepend=-1))
        totals = np.add.reduceat(weights, starts)
        sums, squares = np.add.reduceat(weights * ordered, starts), np.add.reduceat(weights * ordered**2, starts)
        return cls(sums / totals, totals, squares)

    def lloyd(self, centroids: np.ndarray) -> tuple[np.ndarray, float]:
        """Lloyd's iterations from `centroids` until no boundary moves: (centroids, sum of squares)."""
        centroids, cuts = np.sort(centroids), None
        for _ in range(MAX_ITERATIONS):
            boundaries = (centroids[1:] + centroids[:-1]) / 2
            new_cuts = np.concatenate([[0], np.searchsorted(self.values, boundaries, side="right"),
                                       [self.values.size]])
            if cuts is not None and np.array_equal(new_cuts, cuts):
                break
            cuts = new_cuts
            counts = self.count[cuts[1:]] - self.count[cuts[:-1]]
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (self.sum[cuts[1:]] - self.sum[cuts[:-1]]) / counts
            centroids = np.sort(np.where(counts > 0, means, centroids))  # an empty interval keeps its centroid
        return centroids, self._cost(cuts)

    def _cost(self, cuts: np.ndarray) -> float:
        counts = self.count[cuts[1:]] - self.count[cuts[:-1]]
        totals = self.sum[cuts[1:]] - self.sum[cuts[:-1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            means_part = np.where(counts > 0, totals**2 / counts, 0.0)
        return float(np.sum(self.square[cuts[1:]] - self.square[cuts[:-1]] - means_part))


def _starts(points: _Points, size: int):
    """Quantiles, evenly spaced values, then seeded k-means++ draws (weighted by the histogram's counts)."""
    quantile_positions = (np.arange(size) + 0.5) / size * points.count[-1]
    yield points.values[np.minimum(np.searchsorted(points.count[1:], quantile_positions), points.values.size - 1)]
    yield np.linspace(points.values[0], points.values[-1], size)
    rng = np.random.default_rng(SEED)
    small = points.values.size < SMALL_WEIGHT_PER_ENTRY * size
    for _ in range(SMALL_WEIGHT_STARTS if small else RANDOM_STARTS):
        yield _kmeans_plus_plus(points, size, rng)


def _kmeans_plus_plus(points: _Points, size: int, rng: np.random.Generator) -> np.ndarray:
    """Each next centroid drawn with probability proportional to weight x squared distance to the nearest
    centroid drawn so far."""
    chosen = [points.values[np.searchsorted(points.count[1:], rng.random() * points.count[-1])]]
    distance = points.weights * (points.values - chosen[0]) ** 2
    for _ in range(size - 1):
        cumulative = np.cumsum(distance)
        if cumulative[-1] <= 0:
            break
        pick = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1])), points.values.size - 1)
        chosen.append(points.values[pick])
        np.minimum(distance, points.weights * (points.values - points.values[pick]) ** 2, out=distance)
    while len(chosen) < size:  # fewer distinct bins than entries: repeat the last one
        chosen.append(chosen[-1])
    return np.asarray(chosen)


def coremltools_lut_function(nbits: int, importance=None):
    """A `lut_function(weight) -> (lut, uint8 indices)` for coremltools.optimize's 'custom' palettization;
    `importance`: a `modelbuild.coreml.importance.Importance` that weights the k-means (activation-aware)."""
    def lut_function(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        palette, indices = kmeans_palette(weight, 2**nbits, None if importance is None else importance.of(weight))
        return palette.astype(weight.dtype), indices.astype(np.uint8)

    return lut_function


def neural_network_lut_function(importance=None):
    """The `lut_function(nbits, weight) -> (lut, indices)` of NeuralNetwork 'custom_lut' quantization."""
    def lut_function(nbits: int, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        palette, indices = kmeans_palette(weight, 2**nbits, None if importance is None else importance.of(weight))
        return palette.astype(np.float32), indices.astype(np.uint8)

    return lut_function
