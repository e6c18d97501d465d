"""Content hashes of artifacts: files, and .mlpackage folders (relative paths + contents)."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's sorted relative paths and file contents."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(member.relative_to(path).as_posix().encode() + b"\0")
        digest.update(file_sha256(member).encode() + b"\0")
    return digest.hexdigest()
