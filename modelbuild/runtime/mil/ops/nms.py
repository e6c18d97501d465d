"""MIL non_maximum_suppression, after the TensorFlow-based reference of coremltools' tests.

Boxes are (x_center, y_center, width, height). A box's score is its best class
score; boxes are taken in descending score order (iOS15: only scores above
score_threshold) and a box is dropped when its IoU with an already selected box
(of the same best class, with per_class_suppression) exceeds iou_threshold.
Unused output slots hold zeros and index -1.
One kernel per opset (coremltools `iOS15/tensor_operation.py`, `iOS17/tensor_operation.py`):
iOS15: boxes (n, B, 4), scores (n, B, K), score_threshold -> boxes, scores, indices, counts.
iOS17: boxes (n, 4, B), scores (n, K, B), no score_threshold -> boxes, scores, indices.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext
from ..opsets import IOS17


def iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (x_center, y_center, width, height) boxes."""
    cx, cy, w, h = (boxes[:, i:i + 1].astype(np.float64) for i in range(4))
    left, right, bottom, top = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    inter = (np.maximum(0, np.minimum(right, right.T) - np.maximum(left, left.T))
             * np.maximum(0, np.minimum(top, top.T) - np.maximum(bottom, bottom.T)))
    union = w * h + (w * h).T - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def select_boxes(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, score_threshold: float | None,
                 max_boxes: int, per_class: bool) -> list[int]:
    best = scores.max(axis=-1)
    classes = scores.argmax(axis=-1)
    overlaps = iou_matrix(boxes)
    chosen: list[int] = []
    for i in np.argsort(-best, kind="stable"):
        if len(chosen) == max_boxes or (score_threshold is not None and best[i] <= score_threshold):
            break
        rivals = [j for j in chosen if not per_class or classes[j] == classes[i]]
        if all(overlaps[i, j] <= iou_threshold for j in rivals):
            chosen.append(int(i))
    return chosen


def _suppress(
    op: OpContext, boxes: np.ndarray, scores: np.ndarray, iou_threshold: Any, max_boxes: Any,
    score_threshold: Any, per_class_suppression: Any, boxes_last: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores, indices and counts per batch; `boxes_last`: the iOS17 layout, box dimension last."""
    given = {"boxes": boxes, "scores": scores}
    if boxes_last and boxes.ndim == scores.ndim == 3:
        boxes, scores = np.swapaxes(boxes, 1, 2), np.swapaxes(scores, 1, 2)
    if boxes.ndim != 3 or scores.ndim != 3 or boxes.shape[-1] != 4 or scores.shape[:2] != boxes.shape[:2]:
        layout = "(n, 4, B) and scores (n, K, B)" if boxes_last else "(n, B, 4) and scores (n, B, K)"
        raise op.shape_error(f"boxes must be {layout}", **given)
    count = int(max_boxes)
    batches = boxes.shape[0]
    out_boxes = np.zeros((batches, count, 4), np.float32)
    out_scores = np.zeros((batches, count, scores.shape[-1]), np.float32)
    out_indices = np.full((batches, count), -1, np.int32)
    counts = np.zeros(batches, np.int32)
    threshold = None if score_threshold is None else float(score_threshold)
    for b in range(batches):
        chosen = select_boxes(boxes[b], scores[b].astype(np.float64), float(iou_threshold), threshold, count,
                              bool(per_class_suppression))
        counts[b] = len(chosen)
        out_boxes[b, :len(chosen)] = boxes[b, chosen]
        out_scores[b, :len(chosen)] = scores[b, chosen]
        out_indices[b, :len(chosen)] = chosen
    if boxes_last:
        out_boxes, out_scores = np.swapaxes(out_boxes, 1, 2), np.swapaxes(out_scores, 1, 2)
    return out_boxes, out_scores, out_indices, counts


@MIL_OPS.register("non_maximum_suppression")
def non_maximum_suppression(
    op: OpContext, *, boxes: np.ndarray, scores: np.ndarray, iou_threshold: Any, score_threshold: Any,
    max_boxes: Any, per_class_suppression: Any = False,
) -> tuple:
    """iOS15: boxes (n, B, 4), scores (n, B, K); four outputs, the last the number of boxes kept."""
    return _suppress(op, boxes, scores, iou_threshold, max_boxes, score_threshold, per_class_suppression,
                     boxes_last=False)


@MIL_OPS.register("non_maximum_suppression", since=IOS17)
def non_maximum_suppression_ios17(
    op: OpContext, *, boxes: np.ndarray, scores: np.ndarray, iou_threshold: Any, max_boxes: Any,
    per_class_suppression: Any = False,
) -> tuple:
    """iOS17: boxes (n, 4, B), scores (n, K, B), no score_threshold; three outputs (no counts)."""
    return _suppress(op, boxes, scores, iou_threshold, max_boxes, None, per_class_suppression, boxes_last=True)[:3]
