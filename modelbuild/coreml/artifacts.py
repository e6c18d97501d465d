"""Writing Core ML artifacts atomically and hashing them stably.

`save_mlmodel` writes to a temporary sibling (same folder, so the same file
system) and renames it into place; an `.mlpackage` folder cannot be replaced
in one rename, so the old one is renamed aside, the new one renamed in and the
old one deleted. A crash leaves either the old artifact, or the new one, and
never a half-written one under the final name.

Saved artifacts are deterministic: the spec is re-serialised with sorted
protobuf maps (plain serialisation orders them differently in every process)
and coremltools' random UUIDs in an .mlpackage's Manifest.json are replaced by
UUIDs derived from the items' paths, so converting and saving the same model
twice, in two processes, gives byte-identical artifacts.

`package_digest` hashes an `.mlmodel` file, or an `.mlpackage` folder's
relative paths and file contents, with Manifest.json in a canonical form
(identifiers replaced by the paths they stand for), so that it is stable for
packages written by other tools too.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.quiet import quiet_conversion

MANIFEST = "Manifest.json"
_CHUNK = 1 << 20


def save_mlmodel(mlmodel: Any, path: Path) -> Path:
    """Write `mlmodel` to `path` (.mlmodel for NeuralNetwork, .mlpackage for ML Program) atomically."""
    path = Path(path)
    expected = ".mlpackage" if mlmodel.is_package else ".mlmodel"
    if path.suffix != expected:
        kind = "an ML Program" if mlmodel.is_package else "a NeuralNetwork model"
        raise CoreMLBuildError(f"Cannot save {kind} as {str(path)!r}: its file name must end in {expected}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    token = uuid.uuid4().hex[:8]
    temporary = path.with_name(f".{path.stem}.tmp-{token}{path.suffix}")
    try:
        with quiet_conversion():
            mlmodel.save(str(temporary))
        _serialize_deterministically(_spec_file(temporary))
        if temporary.is_dir():
            _make_manifest_deterministic(temporary / MANIFEST)
        _move_into_place(temporary, path, token)
    finally:
        _remove(temporary)
    return path


def _spec_file(saved: Path) -> Path:
    """The protobuf spec inside a saved artifact (the file itself for an .mlmodel)."""
    if saved.is_file():
        return saved
    return saved / "Data" / "com.apple.CoreML" / "model.mlmodel"


def _serialize_deterministically(spec_file: Path) -> None:
    """Rewrite a spec with sorted protobuf maps (metadata, MIL attributes): same model, same bytes.

    Plain protobuf serialisation orders map entries differently from one
    process to the next.
    """
    from modelbuild.quiet import coremltools

    coremltools()
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString(spec_file.read_bytes())
    spec_file.write_bytes(spec.SerializeToString(deterministic=True))


def _make_manifest_deterministic(manifest_path: Path) -> None:
    """Replace the package's random item UUIDs by UUIDs derived from the items' paths.

    Then converting the same model twice gives byte-identical packages, and
    any content hash (doit's md5 included) sees no change.
    """
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = manifest.get("itemInfoEntries", {})
    new_ids = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelbuild:{item.get('path', old)}"))
               for old, item in entries.items()}
    if len(set(new_ids.values())) != len(new_ids):
        return  # two items with one path: leave the manifest as coremltools wrote it
    manifest["itemInfoEntries"] = {new_ids[old]: item for old, item in entries.items()}
    if manifest.get("rootModelIdentifier") in new_ids:
        manifest["rootModelIdentifier"] = new_ids[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n", encoding="utf-8")


def _move_into_place(new: Path, path: Path, token: str) -> None:
    if not new.is_dir() and not path.is_dir():
        os.replace(new, path)  # atomic for a file
        return
    aside = path.with_name(f".{path.name}.old-{token}")
    if path.exists() or path.is_symlink():
        os.rename(path, aside)
    try:
        os.rename(new, path)
    except BaseException:
        if aside.exists() and not path.exists():
            os.rename(aside, path)  # put the old artifact back
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _remove_leftovers(path: Path) -> None:
    """Delete temporaries that an interrupted earlier save of this artifact left behind."""
    for pattern in (f".{path.stem}.tmp-*{path.suffix}", f".{path.name}.old-*"):
        for leftover in path.parent.glob(pattern):
            _remove(leftover)


def package_digest(path: Path) -> str:
    """A stable sha256 (hex) of an .mlmodel file or an .mlpackage folder."""
    path = Path(path)
    if path.is_file():
        digest = hashlib.sha256()
        _feed_file(digest, path)
        return digest.hexdigest()
    if not path.is_dir():
        raise CoreMLBuildError(f"Cannot hash {str(path)!r}: no such .mlmodel file or .mlpackage folder.")
    digest = hashlib.sha256()
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


def _feed_file(digest: Any, file: Path) -> None:
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
