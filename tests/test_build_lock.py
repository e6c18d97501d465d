"""One build per project at a time: a second build waits for the first, naming it, or stops at once."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from modelbuild.build_lock import BUSY_EXIT_CODE, BuildLock

pytestmark = pytest.mark.slow


def _build(root, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "modelbuild", "build", *extra, "build:tiny"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def test_a_second_build_fails_fast_with_no_wait(tiny_project):
    lock = BuildLock(tiny_project)
    lock.acquire()
    try:
        second = _build(tiny_project, "--no-wait")
        out, _ = second.communicate(timeout=120)
    finally:
        lock.release()
    assert second.returncode == BUSY_EXIT_CODE
    assert f"another build of this project is running (pid {os.getpid()}, since " in out
    assert not (tiny_project / "artifacts").exists()  # it did nothing


def test_a_second_build_waits_for_the_first(tiny_project):
    lock = BuildLock(tiny_project)
    lock.acquire()
    second = _build(tiny_project)
    try:
        time.sleep(5)
        assert second.poll() is None and not (tiny_project / "artifacts").exists()  # waiting, not building
    finally:
        lock.release()
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert out.startswith(f"another build of this project is running (pid {os.getpid()}")
    assert "waiting for it to finish" in out and (tiny_project / "artifacts" / "tiny" / "report.html").is_file()
