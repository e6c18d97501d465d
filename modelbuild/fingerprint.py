"""What each build stage reads: recipe fields, tool versions and source files.

A stage's fingerprint is a plain dict of exactly the recipe fields it reads plus
the versions of the tools it runs. doit's `config_changed` compares it with the
last run's, so editing a field re-runs only the stages that read it. Nothing here
imports torch, onnx or coremltools: versions come from package metadata.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from modelbuild import runtime
from modelbuild.recipe import Recipe


@lru_cache(maxsize=None)
def tool_version(distribution: str) -> str:
    """Installed version of a distribution, or 'absent'."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def _interface(recipe: Recipe) -> dict[str, Any]:
    return {"inputs": {k: _dump(v) for k, v in recipe.inputs.items()},
            "outputs": {k: _dump(v) for k, v in recipe.outputs.items()}}


def model_fingerprint(recipe: Recipe) -> dict[str, Any]:
    """What building the PyTorch model reads (the weights file itself is a file dependency), with the other
    recipe fields its patches read (torch::calibrate: the validation samples)."""
    patch_reads = {key: value for patch in recipe.model.patches for key, value in patch.reads(recipe).items()}
    return {"model": _dump(recipe.model), **_interface(recipe), **({"patch_reads": patch_reads} if patch_reads else {}),
            "torch": tool_version("torch"), "python": sys.version.split()[0]}


def onnx_fingerprint(recipe: Recipe) -> dict[str, Any]:
    """What the ONNX stage reads."""
    return {**model_fingerprint(recipe), "onnx": _dump(recipe.onnx),
            "tools": {name: tool_version(name) for name in ("onnx", "onnxruntime")}}


def coreml_fingerprint(recipe: Recipe, variant: str) -> dict[str, Any]:
    """What one Core ML variant reads: the variant, the interface, metadata and its frontend's inputs."""
    spec = recipe.coreml[variant]
    converts_torch = spec.frontend == "torch" and spec.from_variant is None  # else the ONNX file or artifact is a dep
    upstream = model_fingerprint(recipe) if converts_torch else _interface(recipe)
    frontend_tool = "onnx2coreml" if spec.frontend == "onnx" else "torch"
    classifier = _dump(recipe.classifier) if recipe.is_classifier(variant) else None
    stage = {**upstream, f"coreml.{variant}": _dump(spec), "file": recipe.coreml_file(variant), "classifier": classifier,
             "description": recipe.description, "metadata": _dump(recipe.metadata),
             "tools": {name: tool_version(name) for name in ("coremltools", frontend_tool)}}
    if spec.compression is not None:
        stage["compression_code"] = modules_digest(COMPRESSION_MODULES)
        if spec.compression.calibrated:  # measured on the validation samples
            stage["calibration"] = {key: _dump(recipe.validate_)[key] for key in ("samples", "random_samples", "denoise")}
    return stage


# The modules whose code decides a compressed artifact's bytes (a k-means change must rebuild it).
COMPRESSION_MODULES = ("modelbuild/recipe/compression.py", "modelbuild/coreml/kmeans.py",
                       "modelbuild/coreml/compression.py", "modelbuild/coreml/importance.py",
                       "modelbuild/coreml/weight_selection.py", "modelbuild/surgery/coreml_weights.py")

# The module that makes the samples validation and the agreement matrix compare on (outside modelbuild.validation).
SAMPLE_MODULES = ("modelbuild/samples.py",)


@lru_cache(maxsize=None)
def modules_digest(files: tuple[str, ...]) -> str:
    """sha256 of some of modelbuild's own source files (paths relative to the repository)."""
    root = Path(__file__).parent.parent
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()


def validation_fingerprint(recipe: Recipe) -> dict[str, Any]:
    """What validation reads: the model, the interface, the variants, the validate section, the runtime."""
    return {**model_fingerprint(recipe), "validate": _dump(recipe.validate_),
            "classifier": recipe.classifier and _dump(recipe.classifier),
            "coreml": {name: _dump(spec) for name, spec in recipe.coreml.items()},
            "runtime": runtime.source_digest(), "validation": source_digest("modelbuild.validation"),
            "samples": modules_digest(SAMPLE_MODULES),
            "tools": {name: tool_version(name) for name in ("onnxruntime", "coremltools")}}


def agreement_fingerprint(recipe: Recipe, models: list[tuple[str, str, str]]) -> dict[str, Any]:
    """What the agreement matrix reads: its section, the resolved models, and the code that judges."""
    return {"agreement": _dump(recipe.agreement), "models": models,
            "classifier": recipe.classifier and _dump(recipe.classifier),
            "validation": source_digest("modelbuild.validation"), "samples": modules_digest(SAMPLE_MODULES),
            "runtime": runtime.source_digest()}


@lru_cache(maxsize=None)
def source_digest(package: str) -> str:
    """sha256 of a modelbuild sub-package's source files: validation re-runs when its judge changes."""
    folder = Path(__file__).parent.joinpath(*package.split(".")[1:])
    digest = hashlib.sha256()
    for source in sorted(folder.rglob("*.py")):
        digest.update(source.relative_to(folder).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def module_source_file(module: str) -> Path | None:
    """The .py file of a module, found on sys.path without importing it (None if not a plain file)."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])
    if spec is None:
        return None
    if len(parts) == 1:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    for location in spec.submodule_search_locations or []:
        base = Path(location).joinpath(*parts[1:])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def project_source_files(recipe: Recipe, root: Path) -> list[Path]:
    """Source files of the model's module when they live in the project (installed packages are
    covered by their version in the fingerprint)."""
    if recipe.model.factory is None:
        return []
    source = module_source_file(recipe.model.factory.split(":")[0])
    if source is None or "site-packages" in source.parts:
        return []
    return [source.resolve()]


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two fingerprints differ (what made a stage re-run), shallowest first."""
    if isinstance(old, dict) and isinstance(new, dict):
        changed = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                changed.append(path)
            else:
                changed += changed_fields(old[key], new[key], path)
        return changed
    return [] if old == new else [prefix or "(everything)"]
