"""Activation-aware palettes: the energy of each input channel, measured by the runtime, weights the k-means."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from surgery.helpers import CLASSES, TinyClassifier, convert_coreml, run_coreml, sample, seeded, torch_outputs

from modelbuild.coreml.importance import weight_importance
from modelbuild.coreml.kmeans import kmeans_palette, sum_of_squares
from modelbuild.recipe.compression import Compression, compress


@pytest.fixture(scope="module")
def loud_classifier():
    """TinyClassifier whose first convolution makes a few channels 50x louder than the rest (as folded
    batch norms do in FFDNet), with the second convolution's weights reading them 50x smaller."""
    model = seeded(TinyClassifier)
    loud = torch.ones(16)
    loud[:3] = 50.0
    with torch.no_grad():
        model.conv1.weight.mul_(loud.view(-1, 1, 1, 1))
        model.conv1.bias.mul_(loud)
        model.conv2.weight.div_(loud.view(1, -1, 1, 1))
    return model


@pytest.mark.parametrize("fmt", ["mlprogram", "neuralnetwork"])
def test_energies_are_the_mean_squares_of_the_inputs(loud_classifier, fmt):
    mlmodel = convert_coreml(loud_classifier, fmt, (1, CLASSES))
    calibration = [{"x": sample(seed=seed)} for seed in range(2)]
    importance = weight_importance(mlmodel, calibration)
    assert len(importance) == 3  # conv1, conv2, fc
    first = loud_classifier.conv1.weight.detach().numpy()
    expected = np.mean([np.mean(feeds["x"].astype(np.float64) ** 2, axis=(0, 2, 3)) for feeds in calibration], axis=0)
    np.testing.assert_allclose(importance.of(first)[0, :, 0, 0], expected, rtol=1e-6)
    second = importance.of(loud_classifier.conv2.weight.detach().numpy()[:4])  # a group of output channels
    assert second.shape == (4, 16, 3, 3) and second[0, :3, 0, 0].min() > 100 * second[0, 3:, 0, 0].max()
    assert importance.of(np.zeros((2, 2), np.float32)) is None


def test_weighted_kmeans_minimises_the_weighted_error():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(4000)
    importance = np.where(np.abs(values) < 0.2, 1000.0, 1.0)  # the small values matter most
    plain, weighted = kmeans_palette(values, 8), kmeans_palette(values, 8, importance)
    assert sum_of_squares(values, *weighted, importance) < 0.5 * sum_of_squares(values, *plain, importance)


def test_calibrated_palettes_follow_the_loud_channels(loud_classifier):
    mlmodel = convert_coreml(loud_classifier, "mlprogram", (1, CLASSES), "iOS18")
    calibration = [{"x": sample(seed=seed)} for seed in range(4)]
    section = {"nbits": 3, "granularity": "per_grouped_channel", "group_size": 1}
    errors = {}
    for calibrated in (False, True):
        compressed = compress(mlmodel, Compression(palettize={**section, "calibrated": calibrated},
                                                   min_weight_elements=0), calibration)
        x = sample(seed=11)  # not a calibration input
        expected = torch_outputs(loud_classifier, x)
        errors[calibrated] = float(np.abs(run_coreml(compressed, {"x": x})["y"] - expected).max()
                                   / np.abs(expected).max())
    print(f"3-bit channel palettes: max relative error {errors[False]:.3g} plain, {errors[True]:.3g} calibrated")
    assert errors[True] < 0.5 * errors[False]


def test_calibrated_palettes_need_kmeans():
    with pytest.raises(ValueError, match="palettize.calibrated weights the k-means: it takes mode kmeans"):
        Compression(palettize={"nbits": 4, "mode": "uniform", "calibrated": True})
