"""Atomic writes: the old artifact or the new one, never a half-written one, and no temporaries left."""
from __future__ import annotations

import pytest

from modelbuild import atomic
from modelbuild.hashing import artifact_sha256


def test_failure_inside_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.onnx"]


def test_folder_replaced_whole(tmp_path):
    target = tmp_path / "m.mlpackage"
    (target / "Data").mkdir(parents=True)
    (target / "Data" / "old.bin").write_text("old")
    with atomic.atomic_path(target) as temporary:
        (temporary / "Data").mkdir(parents=True)
        (temporary / "Data" / "new.bin").write_text("new")
    assert [p.name for p in (target / "Data").iterdir()] == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


def test_leftovers_of_an_interrupted_write_are_removed(tmp_path):
    target = tmp_path / "r.json"
    (tmp_path / ".r.tmp-deadbeef.json").write_text("partial")
    atomic.write_text(target, "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_folder_hash_sees_contents_and_names(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "a").write_text("1")
    first = artifact_sha256(folder)
    (folder / "a").write_text("2")
    second = artifact_sha256(folder)
    (folder / "a").rename(folder / "b")
    assert len({first, second, artifact_sha256(folder)}) == 3
