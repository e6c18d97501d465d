"""File dependencies: doit's decisions, with each unchanged file hashed once instead of once per task and run."""
from __future__ import annotations

import os

import pytest
from projects import run_doit

from modelbuild import file_checker, tasks


@pytest.fixture
def hashed(monkeypatch):
    """The files the checker hashes, in order."""
    calls = []
    real = file_checker.get_file_md5

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(file_checker, "get_file_md5", counting)
    return calls


def test_a_touched_file_is_hashed_once_for_every_task_and_run(tiny_project, monkeypatch, hashed):
    code, _ = run_doit(tiny_project, monkeypatch)
    assert code == 0
    weights = tiny_project / "weights" / "tiny.pth"
    os.utime(weights, (1_000_000_000, 1_000_000_000))  # new times, same bytes (a checkout, a copy)
    hashed.clear()
    for _ in range(2):
        code, ran = run_doit(tiny_project, monkeypatch)
        assert code == 0 and ran == []
    assert hashed == ["tiny.pth"]  # read by the export, the torch variant and validation: one hash, one run


def test_a_changed_file_of_the_same_size_is_seen(tiny_project, monkeypatch):
    code, _ = run_doit(tiny_project, monkeypatch)
    assert code == 0
    weights = tiny_project / "weights" / "tiny.pth"
    data = bytearray(weights.read_bytes())
    data[-20] ^= 0xFF
    stat = weights.stat()
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    _, ran = run_doit(tiny_project, monkeypatch)
    assert "onnx:tiny" in ran and "coreml:tiny.viatorch" in ran


def test_a_build_made_with_doits_own_checker_stays_up_to_date(tiny_project, monkeypatch):
    monkeypatch.delitem(tasks.DOIT_CONFIG, "check_file_uptodate")
    code, _ = run_doit(tiny_project, monkeypatch)
    assert code == 0
    monkeypatch.undo()
    assert tasks.DOIT_CONFIG["check_file_uptodate"] is file_checker.HashCachingChecker
    code, ran = run_doit(tiny_project, monkeypatch)
    assert code == 0 and ran == []


def test_the_cache_keeps_only_files_that_still_have_that_stat(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kept, gone = tmp_path / "kept.bin", tmp_path / "gone.bin"
    kept.write_bytes(b"a" * 100)
    gone.write_bytes(b"b" * 100)
    checker = file_checker.HashCachingChecker()
    for path in (kept, gone):
        checker.md5(str(path), path.stat())
    gone.unlink()
    other = tmp_path / "other.bin"
    other.write_bytes(b"c")
    checker.md5(str(other), other.stat())
    cached = file_checker.HashCachingChecker()
    assert cached.md5(str(kept), kept.stat()) == checker.md5(str(kept), kept.stat())
    assert len(file_checker._read(tmp_path / file_checker.HASHES_FILE)) == 2
