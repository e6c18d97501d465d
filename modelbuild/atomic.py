"""Write artifacts atomically: build at a temporary sibling path, then rename into place.

A crash or Ctrl-C never leaves a half-written file (or folder) where a finished
one is expected: either the old artifact or the new one is there.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success move it into place, on error remove it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.tmp-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield temporary
        replace(temporary, target)
    finally:
        remove(temporary)


def replace(source: Path, target: Path) -> None:
    """Move `source` onto `target`, for files (os.replace) and folders (old one set aside, then deleted)."""
    if source.is_dir():
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            os.replace(target, aside)
        os.replace(source, target)
        remove(aside)
    else:
        os.replace(source, target)


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_text(target: Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
