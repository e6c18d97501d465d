"""A seeded sample of benchmarks/kill_builds.py: builds SIGKILLed at random points leave nothing half-written."""
from __future__ import annotations

import pytest

import kill_builds

pytestmark = pytest.mark.slow


def test_killed_builds_leave_whole_artifacts_and_recover_identically(tmp_path):
    root, name = kill_builds.make_project(tmp_path / "project", None)
    code, seconds = kill_builds.build(root, name)
    assert code == 0
    reference = kill_builds.digests(root / "artifacts" / name)
    assert {"tiny.onnx", "tiny_viaonnx.mlmodel", "tiny_viatorch.mlmodel", "report.json", "manifest.json"} <= set(reference)
    assert kill_builds.kill_and_recover(root, name, kills=2, seed=7, full_seconds=seconds, reference=reference) == []
