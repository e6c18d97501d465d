"""Fingerprint helpers: the source digest of a package, and the fields that changed between two builds."""
from __future__ import annotations

from modelbuild.fingerprint import changed_fields, module_source_file, source_digest
from projects import REPO


def test_changed_fields_names_the_paths():
    old = {"variant": {"format": "neuralnetwork", "image_inputs": {"x": {"scale": 1.0}}}, "tools": {"a": "1"}}
    new = {"variant": {"format": "neuralnetwork", "image_inputs": {"x": {"scale": 0.5}}}, "tools": {"a": "2"},
           "extra": 1}
    assert changed_fields(old, new) == ["extra", "tools.a", "variant.image_inputs.x.scale"]
    assert changed_fields(old, old) == []


def test_module_source_file_without_importing():
    assert module_source_file("modelbuild.zoo.ffdnet") == REPO / "modelbuild" / "zoo" / "ffdnet.py"
    assert module_source_file("no_such_package.x") is None


def test_source_digest_is_stable():
    assert source_digest("modelbuild.runtime") == source_digest("modelbuild.runtime")
    assert len(source_digest("modelbuild.validation")) == 64
