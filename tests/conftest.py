"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest
from projects import make_tiny_project


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """A project folder with recipes/tiny.yaml (a tiny FFDNet) and weights/tiny.pth."""
    return make_tiny_project(tmp_path)
