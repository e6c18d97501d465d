"""Resolve a recipe's class labels (a Python attribute or a text file) to a list of strings."""
from __future__ import annotations

from pathlib import Path

from modelbuild.recipe.schema import Labels
from modelbuild.references import import_object


def resolve_labels(labels: Labels, root: Path) -> list[str]:
    """The labels, in logit order; a full-sentence error when they are not a list of strings."""
    if labels.file is not None:
        path = root / labels.file
        values = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        where = str(path)
    else:
        value = import_object(labels.python, field="classifier.labels.python")
        values = value() if callable(value) else value
        where = labels.python
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, str) for v in values):
        raise ValueError(f"classifier.labels: {where} did not give a non-empty list of strings")
    return list(values)
