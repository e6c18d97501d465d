"""What each stage reads besides its fingerprint: the files its doit task lists as file_dep, the upstream
stages whose artifacts it reads; its cache key hashes them (`StageInputs`).

Paths are relative to the project root when inside it (`in_project`), so that a moved or copied
checkout keeps its build state and every clone computes the same cache keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelbuild import fingerprint
from modelbuild.project import Loaded


@dataclass(frozen=True)
class StageInputs:
    """What a stage reads besides its fingerprint: files (as doit's file_dep), upstream stages
    ((recipe, stage key) pairs whose artifacts it reads), recipes whose PyTorch model it runs.
    `modelbuild.tasks` declares them with the stage's task; `modelbuild.cache.keys` hashes them."""

    files: tuple[str, ...] = ()
    upstream: tuple[tuple[str, str], ...] = ()
    models: tuple[str, ...] = ()


def in_project(item: Loaded, path: Path) -> str:
    """A dependency or target path as doit records it: relative to the project root when inside it, so that a
    moved or copied checkout keeps its build state."""
    try:
        return str(Path(path).relative_to(item.root))
    except ValueError:
        return str(path)


def model_file_deps(item: Loaded) -> list[str]:
    """The weights file, the model's in-project source file(s) and the files its patches read (torch::calibrate:
    the validation samples), or the source ONNX file."""
    if item.recipe.model.onnx is not None:
        return [in_project(item, item.root / item.recipe.model.onnx)]
    deps = [in_project(item, p) for p in fingerprint.project_source_files(item.recipe, item.root)]
    if item.recipe.model.weights is not None:
        deps.append(in_project(item, item.root / item.recipe.model.weights.path))
    patch_files = (file for patch in item.recipe.model.patches for file in patch.file_deps(item.recipe))
    return deps + [in_project(item, item.root / file) for file in dict.fromkeys(patch_files)]


def labels_deps(item: Loaded) -> list[str]:
    """The classifier's labels file, or the in-project module its labels come from."""
    classifier = item.recipe.classifier
    if classifier is None:
        return []
    if classifier.labels.file is not None:
        return [in_project(item, item.root / classifier.labels.file)]
    source = fingerprint.module_source_file(classifier.labels.python.split(":")[0])
    return [in_project(item, source)] if source is not None and "site-packages" not in source.parts else []


def compression_deps(item: Loaded, variant: str) -> list[str]:
    """The validation samples, when a variant's compression is calibrated on them."""
    compression = item.recipe.coreml[variant].compression
    if compression is None or not compression.calibrated:
        return []
    return [in_project(item, item.root / sample) for sample in item.recipe.validate_.samples]
