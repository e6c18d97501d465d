"""The runtime's source digest: what validation re-runs for. It follows the runtime's .py files only."""
from __future__ import annotations

from pathlib import Path

from modelbuild.runtime import source


def test_digest_changes_with_a_files_content_and_name_and_nothing_else(tmp_path, monkeypatch, request):
    request.addfinalizer(source.source_digest.cache_clear)
    (tmp_path / "mil").mkdir()
    (tmp_path / "mil" / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(source, "RUNTIME_ROOT", tmp_path)

    def digest():
        source.source_digest.cache_clear()
        return source.source_digest()

    first = digest()
    (tmp_path / "README.md").write_text("notes\n")
    (tmp_path.parent / "beside.py").write_text("y = 1\n")  # a tool beside the runtime, as its conformance harness
    assert digest() == first
    (tmp_path / "mil" / "a.py").write_text("x = 2\n")
    second = digest()
    (tmp_path / "mil" / "a.py").rename(tmp_path / "mil" / "b.py")
    assert len({first, second, digest()}) == 3


def test_the_conformance_harness_lies_outside_what_the_digest_reads():
    import modelbuild.runtime_conformance as harness

    assert not Path(harness.__file__).resolve().is_relative_to(source.RUNTIME_ROOT.resolve())
