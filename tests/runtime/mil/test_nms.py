"""non_maximum_suppression against coremltools' smoke case and torchvision.ops.nms / batched_nms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from modelbuild.runtime.mil.testing import mb, run_mil


@pytest.mark.ops("non_maximum_suppression")
def test_coremltools_smoke_case():
    boxes = np.array([[[0.0] * 4, [1.0] * 4, [2.0] * 4, [3.0] * 4]], np.float32)
    scores = np.array([[[-3.5], [9.4], [2.3], [0.7]]], np.float32)
    got = run_mil(lambda b, s: mb.non_maximum_suppression(boxes=b, scores=s, iou_threshold=0.2, score_threshold=0.4,
                                                          max_boxes=2, per_class_suppression=True),
                  {"b": boxes, "s": scores}, target="iOS15")
    np.testing.assert_array_equal(got[0], [[[1.0] * 4, [2.0] * 4]])
    np.testing.assert_array_equal(got[1], np.array([[[9.4], [2.3]]], np.float32))
    np.testing.assert_array_equal(got[2], [[1, 2]])
    np.testing.assert_array_equal(got[3], [2])


def _random_boxes(rng, batches: int, count: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.uniform(0, 10, (batches, count, 2))
    sizes = rng.uniform(1, 4, (batches, count, 2))
    return (np.concatenate([centres, sizes], -1).astype(np.float32),
            rng.uniform(0, 1, (batches, count, classes)).astype(np.float32))


def _corners(boxes: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(boxes).double()
    return torch.cat([t[:, :2] - t[:, 2:] / 2, t[:, :2] + t[:, 2:] / 2], dim=1)


@pytest.mark.ops("non_maximum_suppression")
def test_ios15_layout_matches_torchvision_nms(rng):
    boxes, scores = _random_boxes(rng, 2, 30, 3)
    out_boxes, out_scores, indices, counts = run_mil(
        lambda b, s: mb.non_maximum_suppression(boxes=b, scores=s, iou_threshold=0.3, score_threshold=0.2,
                                                max_boxes=12),
        {"b": boxes, "s": scores}, target="iOS15",
    )
    for b in range(2):
        best = torch.from_numpy(scores[b]).double().max(1).values
        keep = torch.nonzero(best > 0.2).flatten()
        expected = keep[torchvision.ops.nms(_corners(boxes[b])[keep], best[keep], 0.3)][:12].numpy()
        assert counts[b] == len(expected)
        np.testing.assert_array_equal(indices[b, :counts[b]], expected)
        assert (indices[b, counts[b]:] == -1).all() and (out_boxes[b, counts[b]:] == 0).all()
        np.testing.assert_array_equal(out_boxes[b, :counts[b]], boxes[b, expected])
        np.testing.assert_array_equal(out_scores[b, :counts[b]], scores[b, expected])


@pytest.mark.ops("non_maximum_suppression")
def test_ios17_layout_per_class_matches_batched_nms(rng):
    boxes, scores = _random_boxes(rng, 1, 25, 4)
    got_boxes, got_scores, indices = run_mil(
        lambda b, s: mb.non_maximum_suppression(boxes=b, scores=s, iou_threshold=0.25, max_boxes=30,
                                                per_class_suppression=True),
        {"b": np.swapaxes(boxes, 1, 2).copy(), "s": np.swapaxes(scores, 1, 2).copy()}, target="iOS17",
    )
    best = torch.from_numpy(scores[0]).double()
    expected = torchvision.ops.batched_nms(_corners(boxes[0]), best.max(1).values, best.argmax(1), 0.25).numpy()
    np.testing.assert_array_equal(indices[0, :len(expected)], expected)
    assert (indices[0, len(expected):] == -1).all()
    np.testing.assert_array_equal(got_boxes[0, :, :len(expected)], boxes[0, expected].T)
    np.testing.assert_array_equal(got_scores[0, :, :len(expected)], scores[0, expected].T)
