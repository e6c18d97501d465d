"""Artifacts are verified, not assumed: what a stage recorded about its output, checked against the disk.

A stage's record holds, for each file it wrote, its plain sha256 (what `sha256sum` prints) or,
for an .mlpackage folder, the package digest (`modelbuild.hashing`) plus the sha256 of every
file inside. Beside it, a stat cache keeps each output's size and modification and change
times as last verified: `changed` trusts an unchanged snapshot, which costs a stat per file,
and hashes only when the snapshot moved, so a no-op build stays fast while any write (even
one that restores the modification time) is caught by the next build.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from modelbuild import atomic
from modelbuild.hashing import artifact_sha256

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The plain sha256 of a file's bytes, as `sha256sum` prints it."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(path: Path) -> list[Path]:
    """The files in the folder, at any depth, in the order of their relative POSIX names."""
    found = []
    for folder, _, names in os.walk(path):
        relative = os.path.relpath(folder, path)
        found.extend((name if relative == "." else f"{relative}/{name}".replace(os.sep, "/"), folder, name)
                     for name in names)
    return [Path(folder, name) for _, folder, name in sorted(found)]


def describe(path: Path) -> dict[str, Any]:
    """The digests to record about an output: its sha256, or a package's digest and its files' sha256."""
    path = Path(path)
    if path.is_dir():
        return {"package_digest": artifact_sha256(path),
                "files": {p.relative_to(path).as_posix(): sha256_file(p) for p in _files(path)}}
    return {"sha256": sha256_file(path)}


def snapshot(path: Path) -> list[list[Any]]:
    """[relative name, size, mtime_ns, ctime_ns] of the file or of every file in the folder. The inode's change
    time moves with every write, even one that restores the modification time afterwards."""
    path = Path(path)
    files = _files(path) if path.is_dir() else [path]
    snap = []
    for file in files:
        info = file.stat()
        snap.append([file.relative_to(path).as_posix() if path.is_dir() else file.name, info.st_size,
                     info.st_mtime_ns, info.st_ctime_ns])
    return snap


class StatCache:
    """Snapshots of outputs whose content was last seen to match their record (a JSON file per stage)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        try:
            self.entries = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def matches(self, path: Path) -> bool:
        return self.entries.get(path.name) == snapshot(path)

    def remember(self, paths: list[Path]) -> None:
        """Record the current snapshots of `paths` (their content was just verified or written)."""
        for path in paths:
            self.entries[path.name] = snapshot(path)
        atomic.write_text(self.file, json.dumps(self.entries) + "\n")


def changed(path: Path, recorded: dict[str, Any], cache: StatCache | None = None) -> str | None:
    """Why the output at `path` no longer is what was recorded (None when it is). With a `cache`, an
    unchanged snapshot is trusted; without one the content is always hashed."""
    path = Path(path)
    if not path.exists():
        return f"{path.name} is missing"
    try:
        if cache is not None and cache.matches(path):
            return None
        if "package_digest" in recorded:
            same = path.is_dir() and artifact_sha256(path) == recorded["package_digest"]
        else:
            same = path.is_file() and sha256_file(path) == recorded.get("sha256")
    except OSError as err:
        return f"{path.name} cannot be read ({err.strerror or err})"
    if not same:
        return f"{path.name} changed since it was built (its content differs from the record)"
    if cache is not None:
        cache.remember([path])
    return None
