"""The project files each stage reads: what its doit task lists as file_dep, and its cache key hashes.

Paths are relative to the project root when inside it (`in_project`), so that a moved or copied
checkout keeps its build state and every clone computes the same cache keys.
"""
from __future__ import annotations

from pathlib import Path

from modelbuild import fingerprint
from modelbuild.project import Loaded


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
