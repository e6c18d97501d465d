"""An exclusive lock on a file, released by the OS when its process dies.

POSIX `flock` from the standard library (importing the `filelock` package costs ~40 ms,
a tenth of a no-op build); on Windows, where there is no fcntl, `filelock` does it.

    with FileLock(path):            # waits
        ...
    lock = FileLock(path)
    if not lock.acquire(blocking=False): ...   # someone else holds it
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FileLock:
    """An exclusive, non-reentrant lock on `path` (created if missing, never deleted)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fd: int | None = None
        self._fallback = None if fcntl is not None else _filelock(self.path)

    @property
    def is_locked(self) -> bool:
        return self._fd is not None if self._fallback is None else self._fallback.is_locked

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it when `blocking`); False when it is held elsewhere and not blocking."""
        if self._fallback is not None:  # pragma: no cover - Windows
            from filelock import Timeout

            try:
                self._fallback.acquire(timeout=-1 if blocking else 0)
            except Timeout:
                return False
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
        elif self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _filelock(path: str):  # pragma: no cover - Windows
    from filelock import FileLock as PortableLock

    return PortableLock(path)
