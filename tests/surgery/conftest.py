"""Fixtures of the surgery tests (the helpers themselves live in surgery/helpers.py)."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from surgery.helpers import CLASSES, TinyClassifier, TinyImageModel, apply_step_checked, convert_coreml, seeded
from torch import nn


@pytest.fixture
def apply_step() -> Callable[..., Any]:
    """The step-applying helper (see surgery/helpers.py)."""
    return apply_step_checked


@pytest.fixture(scope="session")
def classifier() -> nn.Module:
    return seeded(TinyClassifier)


@pytest.fixture(scope="session")
def image_model() -> nn.Module:
    return seeded(TinyImageModel)


@pytest.fixture(scope="session")
def nn_classifier(classifier: nn.Module) -> Any:
    return convert_coreml(classifier, "neuralnetwork", (1, CLASSES))


@pytest.fixture(scope="session")
def mlprogram_classifier(classifier: nn.Module) -> Any:
    return convert_coreml(classifier, "mlprogram", (1, CLASSES))
