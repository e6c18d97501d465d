"""One build per project at a time: a lock file held for the whole `doit` run.

Two builds in one checkout would both do all the work and race on the same files. The lock
(`.modelbuild.lock` in the project root, a `modelbuild.file_lock` lock, released by the OS if the
process dies) is taken before any task runs; a second build waits for it, naming the first one's pid,
or with MODELBUILD_NO_WAIT=1 (`modelbuild build --no-wait`) stops at once with exit code 3.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from modelbuild.file_lock import FileLock

LOCK_NAME = ".modelbuild.lock"
NO_WAIT_VARIABLE = "MODELBUILD_NO_WAIT"
BUSY_EXIT_CODE = 3


class BuildLock:
    """The project's build lock; `acquire` waits (or exits) when another build holds it."""

    def __init__(self, root: Path) -> None:
        self.lock = FileLock(root / LOCK_NAME)
        self.owner_file = root / (LOCK_NAME + ".owner")

    def acquire(self, write=print) -> None:
        if not self.lock.acquire(blocking=False):
            owner = self._owner()
            if os.environ.get(NO_WAIT_VARIABLE):
                write(f"another build of this project is running ({owner}); not waiting ({NO_WAIT_VARIABLE} is set)")
                sys.exit(BUSY_EXIT_CODE)
            write(f"another build of this project is running ({owner}); waiting for it to finish ...")
            self.lock.acquire()
        self.owner_file.write_text(f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}\n")

    def release(self) -> None:
        if self.lock.is_locked:
            self.owner_file.unlink(missing_ok=True)
            self.lock.release()

    def _owner(self) -> str:
        try:
            return self.owner_file.read_text().strip()
        except OSError:
            return "pid unknown"
