"""Fixtures of the ML Program runtime tests (the build-convert-run helper is modelbuild.runtime.mil.testing)."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
