"""Fingerprint helpers: the source digest of a package, and the fields that changed between two builds."""
from __future__ import annotations

from modelbuild.fingerprint import changed_fields, module_source_file
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


def test_source_digest_covers_names_and_contents(tmp_path, monkeypatch):
    """The digest of a package's source changes with a file's content and with a file's name."""
    import modelbuild.fingerprint as fingerprint

    package = tmp_path / "modelbuild" / "judge"
    package.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(fingerprint, "__file__", str(tmp_path / "modelbuild" / "fingerprint.py"))

    def digest():
        fingerprint.source_digest.cache_clear()
        return fingerprint.source_digest("modelbuild.judge")

    first = digest()
    assert len(first) == 64 and digest() == first
    (package / "a.py").write_text("x = 2\n")
    second = digest()
    (package / "a.py").rename(package / "b.py")
    assert len({first, second, digest()}) == 3
