"""What every part of the inspection shares: the user-facing error, the op histogram, the model types."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

ACCEPTED = ".onnx, .mlmodel or .mlpackage"
NEURAL_NETWORK_TYPES = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")  # Core ML spec Types


class InspectError(Exception):
    """A model path that cannot be inspected: missing, of an unknown kind, or unreadable."""


def op_histogram(kind: str, op_types: Iterable[str]) -> dict[str, Any]:
    """`{"kind", "total", "counts"}` with counts most frequent first, ties in name order."""
    counts = Counter(op_types)
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return {"kind": kind, "total": sum(counts.values()), "counts": ordered}
