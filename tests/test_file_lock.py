"""The file lock: exclusive between processes, released on release() and when the holder dies."""
from __future__ import annotations

import subprocess
import sys

from modelbuild.file_lock import FileLock

HOLD = "import sys, time; from modelbuild.file_lock import FileLock; FileLock(sys.argv[1]).acquire(); " \
       "print('held', flush=True); time.sleep(60)"


def test_a_second_holder_is_refused_until_release(tmp_path):
    path = tmp_path / "x.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.acquire(blocking=False) and first.is_locked
    assert not second.acquire(blocking=False) and not second.is_locked
    first.release()
    assert not first.is_locked
    assert second.acquire(blocking=False)
    second.release()


def test_the_context_manager_holds_and_releases(tmp_path):
    path = tmp_path / "x.lock"
    with FileLock(path) as held:
        assert held.is_locked and not FileLock(path).acquire(blocking=False)
    assert FileLock(path).acquire(blocking=False)


def test_the_os_releases_the_lock_of_a_killed_process(tmp_path):
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not FileLock(path).acquire(blocking=False)
    finally:
        holder.kill()
        holder.wait()
    assert FileLock(path).acquire(blocking=False)
