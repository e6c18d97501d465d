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

Their digest is `modelbuild.hashing.artifact_sha256`, which hashes an
.mlpackage's Manifest.json in a canonical form, so that it is stable for
packages written by other tools too.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from modelbuild.atomic import atomic_path
from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.quiet import quiet_conversion
from modelbuild.hashing import MANIFEST, artifact_sha256
from modelbuild.quiet import coremltools


def save_mlmodel(mlmodel: Any, path: Path) -> Path:
    """Write `mlmodel` to `path` (.mlmodel for NeuralNetwork, .mlpackage for ML Program) atomically."""
    path = Path(path)
    expected = ".mlpackage" if mlmodel.is_package else ".mlmodel"
    if path.suffix != expected:
        kind = "an ML Program" if mlmodel.is_package else "a NeuralNetwork model"
        raise CoreMLBuildError(f"Cannot save {kind} as {str(path)!r}: its file name must end in {expected}.")
    with atomic_path(path) as temporary:
        with quiet_conversion():
            mlmodel.save(str(temporary))
        _serialize_deterministically(_spec_file(temporary))
        if temporary.is_dir():
            _make_manifest_deterministic(temporary / MANIFEST)
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
