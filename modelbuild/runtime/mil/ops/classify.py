"""MIL classify: the predicted label and the label -> probability dictionary of a classifier."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext


def _label(value: Any) -> str | int:
    if isinstance(value, str):
        return value
    return int(np.asarray(value).item()) if np.asarray(value).dtype.kind in "iu" else str(np.asarray(value).item())


@MIL_OPS.register("classify")
def classify(op: OpContext, *, probabilities: np.ndarray, classes: Any) -> tuple[str | int, dict]:
    """Label of the largest probability (first on ties) and every class's probability (a float)."""
    labels = [_label(c) for c in (classes if isinstance(classes, list) else np.asarray(classes).reshape(-1))]
    flat = np.asarray(probabilities, np.float64).reshape(-1)
    if flat.size != len(labels):
        raise op.shape_error(f"probabilities must hold one value per class ({len(labels)})",
                             probabilities=probabilities)
    return labels[int(np.argmax(flat))], {label: float(p) for label, p in zip(labels, flat)}
