"""Helpers of the cache tests: projects with a cache, their artifacts as bytes, a build that must not convert."""
from __future__ import annotations

import json
from pathlib import Path

from projects import edit_recipe, make_tiny_project

STAGES = ["coreml:tiny.prog", "coreml:tiny.viaonnx", "coreml:tiny.viatorch", "onnx:tiny", "validate:tiny"]
STAGE_FUNCTIONS = [("modelbuild.stages.onnx_stage", "export_onnx"), ("modelbuild.stages.coreml_stage", "build_coreml"),
                   ("modelbuild.stages.validate_stage", "validate"), ("modelbuild.stages.agreement_stage", "agreement")]


def make_clone(folder: Path, url: str, storage_options: dict | None = None, read_only: bool = False) -> Path:
    """A tiny project (two NeuralNetwork variants and an ML Program) whose pyproject.toml names the cache."""
    folder.mkdir(parents=True)
    make_tiny_project(folder)
    edit_recipe(folder, lambda d: d["coreml"].update(prog={"frontend": "torch", "format": "mlprogram"}))
    set_cache(folder, url, storage_options, read_only)
    return folder


def set_cache(root: Path, url: str, storage_options: dict | None = None, read_only: bool = False) -> None:
    options = "".join(f"{name} = {json.dumps(value)}\n" for name, value in (storage_options or {}).items())
    (root / "pyproject.toml").write_text(
        f"[tool.modelbuild.cache]\nurl = {json.dumps(url)}\nread_only = {str(read_only).lower()}\n"
        + (f"[tool.modelbuild.cache.storage_options]\n{options}" if options else ""))


def artifact_bytes(root: Path, recipe: str = "tiny") -> dict[str, bytes]:
    """Every artifact, report, digest file and manifest.json (the records hold build times: not compared)."""
    folder = root / "artifacts" / recipe
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and ".records" not in path.parts and path.name != "timings.json"}


def forbid_building(monkeypatch) -> None:
    """Make every stage function fail: a build that still succeeds restored everything."""
    import importlib

    def refuse(*args, **kwargs):
        raise AssertionError("a stage ran although the cache holds it")

    for module, name in STAGE_FUNCTIONS:
        monkeypatch.setattr(importlib.import_module(module), name, refuse)
