"""Write artifacts atomically: build at a temporary sibling path, then rename into place.

A crash or Ctrl-C never leaves a half-written file (or folder) where a finished
one is expected: either the old artifact or the new one is there. A folder (an
.mlpackage) cannot be replaced in one rename: the old one is renamed aside, the
new one renamed in (the old one put back if that fails), then the old one deleted.
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
    remove_leftovers(target)
    token = uuid.uuid4().hex[:8]
    temporary = target.with_name(f".{target.stem}.tmp-{token}{target.suffix}")
    try:
        yield temporary
        replace(temporary, target, token)
    finally:
        remove(temporary)


def replace(source: Path, target: Path, token: str = "") -> None:
    """Move `source` onto `target`: os.replace for files, rename-aside-then-in for folders."""
    if not source.is_dir() and not target.is_dir():
        os.replace(source, target)
        return
    aside = target.with_name(f".{target.name}.old-{token or uuid.uuid4().hex[:8]}")
    if target.exists() or target.is_symlink():
        os.rename(target, aside)
    try:
        os.rename(source, target)
    except BaseException:
        if aside.exists() and not target.exists():
            os.rename(aside, target)  # put the old artifact back
        raise
    remove(aside)


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_leftovers(target: Path) -> None:
    """Delete temporaries that an interrupted earlier write of `target` left behind."""
    for pattern in (f".{target.stem}.tmp-*{target.suffix}", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            remove(leftover)


def write_text(target: Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
