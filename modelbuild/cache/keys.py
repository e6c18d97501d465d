"""Cache keys: the sha256 of everything a stage's outputs are a function of.

A key hashes a canonical JSON of: the stage fingerprint (the recipe fields it reads, tool
versions), the content of the task's file dependencies (weights, model source, samples,
labels), the sha256 of the upstream artifacts it reads (from their records), the PyTorch models
an agreement matrix runs, the modelbuild source and the platform. Paths inside the project are
written relative to it, so that every clone of a project, wherever it is, computes the same key.

Keys are computed only when a stage is about to run: a no-op build never hashes anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelbuild import manifest
from modelbuild.verify import sha256_file

if TYPE_CHECKING:
    from modelbuild.file_deps import StageInputs

FORMAT = 1
ORIGIN_VARIABLE = "MODELBUILD_PROJECT_ORIGIN"  # set by cluster workers, which build in a mirror of the project
_FILE_HASHES: dict[tuple, str] = {}


def stage_key(item, key: str, stage_fingerprint: dict[str, Any], inputs: StageInputs) -> str | None:
    """The cache key of stage `key`, or None when an upstream stage it reads is not built."""
    material = key_material(item, key, stage_fingerprint, inputs)
    if material is None:
        return None
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_material(item, key: str, stage_fingerprint: dict[str, Any], inputs: StageInputs) -> dict[str, Any] | None:
    """What the key hashes (None when an upstream stage is not built)."""
    # the recipe schema (pydantic): `modelbuild cache status|push|gc` import this module, through cache.stage
    from modelbuild import fingerprint
    from modelbuild.project import load_project

    bases = _project_bases(item.root)
    upstream = {}
    for recipe, stage in inputs.upstream:
        record = manifest.read_record(item.root / "artifacts" / recipe, stage) or {}
        digest = record.get("sha256") or record.get("package_digest")
        if record.get("outcome") != "built" or not digest:
            return None
        upstream[f"{recipe}/{stage}"] = digest
    recipes = {loaded.name: loaded.recipe for loaded in load_project(item.root) if loaded.recipe is not None}
    models = {name: _relative(fingerprint.model_fingerprint(recipes[name]), bases) for name in inputs.models
              if name in recipes}
    files = sorted([_label(dep, bases), file_sha256(_absolute(dep, item.root))] for dep in inputs.files)
    return {"format": FORMAT, "modelbuild": fingerprint.source_digest("modelbuild"),
            "platform": f"{platform.system()}-{platform.machine()}", "recipe": item.name, "stage": key,
            "fingerprint": _relative(stage_fingerprint, bases), "files": files, "upstream": upstream,
            "models": models}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per process while its size and times stay the same."""
    info = path.stat()
    snapshot = (str(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    if snapshot not in _FILE_HASHES:
        _FILE_HASHES[snapshot] = sha256_file(path)
    return _FILE_HASHES[snapshot]


def _project_bases(root: Path) -> list[Path]:
    """The folders whose paths count as inside the project: its root (as given and resolved), and the
    project a cluster worker's mirror stands for."""
    bases = [Path(root), Path(root).resolve()]
    origin = os.environ.get(ORIGIN_VARIABLE)
    if origin:
        bases += [Path(origin), Path(origin).resolve()]
    return list(dict.fromkeys(bases))


def _absolute(dep: str, root: Path) -> Path:
    path = Path(dep)
    return path if path.is_absolute() else Path(root) / path


def _label(dep: str, bases: list[Path]) -> str:
    """A dependency's name in the key: its path in the project, or 'outside/<file name>' (its content
    decides, not where it is installed)."""
    path = Path(dep)
    if not path.is_absolute():
        return path.as_posix()
    for candidate in (path, path.resolve()):
        for base in bases:
            if candidate.is_relative_to(base):
                return candidate.relative_to(base).as_posix()
    return f"outside/{path.name}"


def _relative(value: Any, bases: list[Path]) -> Any:
    """`value` with every string that is a path inside the project written relative to it."""
    if isinstance(value, dict):
        return {k: _relative(v, bases) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_relative(v, bases) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        for base in bases:
            if Path(value).is_relative_to(base):
                return f"<project>/{Path(value).relative_to(base).as_posix()}"
    return value
