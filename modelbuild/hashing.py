"""Content hashes of artifacts: a file, or an .mlpackage folder (relative paths and contents).

An .mlpackage's Manifest.json is hashed in a canonical form (its random item
identifiers replaced by the paths they stand for), so that the hash is stable
for packages written by other tools too.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "Manifest.json"
_CHUNK = 1 << 20


def artifact_sha256(path: Path) -> str:
    """sha256 (hex) of a file, or of a folder's sorted relative paths and file contents."""
    path = Path(path)
    digest = hashlib.sha256()
    if not path.is_dir():
        _feed_file(digest, path)
        return digest.hexdigest()
    files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    for file in files:
        relative = file.relative_to(path).as_posix()
        digest.update(relative.encode() + b"\0")
        if relative == MANIFEST:
            digest.update(_canonical_manifest(file))
        else:
            _feed_file(digest, file)
        digest.update(b"\0")
    return digest.hexdigest()


def _feed_file(digest, file: Path) -> None:
    digest.update(str(file.stat().st_size).encode() + b"\0")
    with open(file, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)


def _canonical_manifest(file: Path) -> bytes:
    """Manifest.json without its random item identifiers."""
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
        entries = manifest.get("itemInfoEntries", {})
        root = entries.get(manifest.get("rootModelIdentifier"), {}).get("path")
        canonical = {
            "fileFormatVersion": manifest.get("fileFormatVersion"),
            "items": sorted(entries.values(), key=lambda e: json.dumps(e, sort_keys=True)),
            "rootModelPath": root,
        }
    except (ValueError, AttributeError):
        return file.read_bytes()  # not the manifest we know: hash it as it is
    return json.dumps(canonical, sort_keys=True).encode()
