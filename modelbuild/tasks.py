"""The doit task graph, generated as plain dicts from the recipes.

Task creation is pure and cheap: it loads the YAML recipes (pyyaml, pydantic)
and never imports torch, onnx or coremltools; the actions do that when they run.

Per recipe r:
  onnx:r            model + weights -> artifacts/r/<r>.onnx
  coreml:r.<v>      ONNX file or torch model -> artifacts/r/<file>.mlmodel|.mlpackage
  validate:r        PyTorch vs onnxruntime vs Core ML -> artifacts/r/report.{json,md,html}
  agreement:r       top-1 agreement matrix of the models the recipe lists (optional)
  build:r           all of the above (`doit build` builds every recipe)
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from modelbuild import atomic, fingerprint, manifest
from modelbuild.diagnostics import BuildWarning
from modelbuild.recipe import Recipe, RecipeError, load_recipe

ARTIFACTS = "artifacts"
RECIPES = "recipes"

DOIT_CONFIG = {
    "default_tasks": ["build"],
    "verbosity": 2,
    "dep_file": ".doit.db",
    "backend": "json",
}


@dataclass
class Loaded:
    """A recipe file with its validated Recipe, or the RecipeError it gave."""

    path: Path
    root: Path
    recipe: Recipe | None = None
    error: RecipeError | None = None

    @classmethod
    def load(cls, path: Path, root: Path) -> "Loaded":
        """Read and validate the recipe at `path`, keeping the error instead of raising it."""
        try:
            return cls(path, root, recipe=load_recipe(path))
        except RecipeError as err:
            return cls(path, root, error=err)

    @classmethod
    def of(cls, recipe: Recipe, root: Path) -> "Loaded":
        """A Loaded for an already validated recipe (its file is not read again)."""
        return cls(root / RECIPES / f"{recipe.name}.yaml", root, recipe=recipe)

    @property
    def name(self) -> str:
        return self.recipe.name if self.recipe else self.path.stem

    @property
    def artifact_dir(self) -> Path:
        return self.root / ARTIFACTS / self.name


@lru_cache(maxsize=8)
def load_project(root: Path) -> tuple[Loaded, ...]:
    """Every recipe under root/recipes, sorted by file name; duplicate names are errors."""
    loaded = tuple(Loaded.load(path, root) for path in sorted((root / RECIPES).glob("*.yaml")))
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.recipe is not None:
            if item.name in seen:
                item.error = RecipeError([f"{item.path.relative_to(root)}:1: name: {item.name!r} is also the "
                                          f"name of {seen[item.name].relative_to(root)}; recipe names must be unique"])
                item.recipe = None
            else:
                seen[item.name] = item.path
    return loaded


def onnx_file(item: Loaded) -> Path:
    """Where the recipe's ONNX artifact goes."""
    return item.artifact_dir / item.recipe.onnx_file


def coreml_target(item: Loaded, variant: str) -> Path:
    """The doit target of a Core ML variant (see `dependency_file`)."""
    return dependency_file(item.artifact_dir / item.recipe.coreml_file(variant))


def dependency_file(artifact: Path) -> Path:
    """What doit tracks for an artifact: the file itself, or the digest file beside a .mlpackage folder."""
    return artifact.with_name(artifact.name + ".sha256") if artifact.suffix == ".mlpackage" else artifact


def model_file_deps(item: Loaded) -> list[str]:
    """The weights file, the model's in-project source file(s) and the files its patches read (torch::calibrate:
    the validation samples), or the source ONNX file."""
    if item.recipe.model.onnx is not None:
        return [str(item.root / item.recipe.model.onnx)]
    deps = [str(p) for p in fingerprint.project_source_files(item.recipe, item.root)]
    if item.recipe.model.weights is not None:
        deps.append(str(item.root / item.recipe.model.weights.path))
    patch_files = (file for patch in item.recipe.model.patches for file in patch.file_deps(item.recipe))
    return deps + [str(item.root / file) for file in dict.fromkeys(patch_files)]


def labels_deps(item: Loaded) -> list[str]:
    """The classifier's labels file, or the in-project module its labels come from."""
    classifier = item.recipe.classifier
    if classifier is None:
        return []
    if classifier.labels.file is not None:
        return [str(item.root / classifier.labels.file)]
    source = fingerprint.module_source_file(classifier.labels.python.split(":")[0])
    return [str(source)] if source is not None and "site-packages" not in source.parts else []


def onnx_task(item: Loaded) -> dict[str, Any]:
    """Task dict of onnx:<recipe>."""
    from modelbuild.stages import onnx_stage  # light: imports torch only when the action runs

    target = onnx_file(item)
    stage_fingerprint = fingerprint.onnx_fingerprint(item.recipe)
    return {
        "name": item.name,
        "doc": f"export {item.name} to {target.relative_to(item.root)}",
        "actions": [(run_stage, [item, "onnx", target, onnx_stage.export_onnx, (item.recipe, item.root, target),
                                  stage_fingerprint])],
        "file_dep": model_file_deps(item),
        "targets": [str(target)],
        "uptodate": [config_changed(stage_fingerprint)],
        "clean": True,
    }


def coreml_task(item: Loaded, variant: str) -> dict[str, Any]:
    """Task dict of coreml:<recipe>.<variant>."""
    from modelbuild.stages import coreml_stage

    spec = item.recipe.coreml[variant]
    artifact = item.artifact_dir / item.recipe.coreml_file(variant)
    target = coreml_target(item, variant)
    deps = [str(onnx_file(item))] if spec.frontend == "onnx" else model_file_deps(item)
    if item.recipe.is_classifier(variant):
        deps += labels_deps(item)
    args = (item.recipe, item.root, variant, onnx_file(item), artifact)
    stage_fingerprint = fingerprint.coreml_fingerprint(item.recipe, variant)
    return {
        "name": f"{item.name}.{variant}",
        "doc": f"convert {item.name} to {artifact.relative_to(item.root)} ({spec.frontend} -> {spec.format})",
        "actions": [(run_stage, [item, f"coreml.{variant}", artifact, coreml_stage.build_coreml, args,
                                  stage_fingerprint])],
        "file_dep": deps,
        "targets": [str(target)],
        "uptodate": [config_changed(stage_fingerprint), artifact.exists],
        "clean": [(atomic.remove, [artifact]), (atomic.remove, [target])],
    }


def validate_task(item: Loaded) -> dict[str, Any]:
    """Task dict of validate:<recipe>: compare every artifact with PyTorch, write the reports."""
    from modelbuild.stages import validate_stage

    recipe = item.recipe
    reports = [item.artifact_dir / name for name in ("report.json", "report.md", "report.html")]
    deps = [str(onnx_file(item)), *(str(coreml_target(item, v)) for v in recipe.coreml), *model_file_deps(item),
            *labels_deps(item), *(str(item.root / sample) for sample in recipe.validate_.samples)]
    stage_fingerprint = fingerprint.validation_fingerprint(recipe)
    return {
        "name": item.name,
        "doc": f"compare {item.name}'s artifacts with PyTorch; write {reports[0].parent.relative_to(item.root)}/report.*",
        "actions": [(run_stage, [item, "validate", reports[0], validate_stage.validate,
                                 (recipe, item.root, item.artifact_dir), stage_fingerprint])],
        "file_dep": deps,
        "targets": [str(r) for r in reports],
        "uptodate": [config_changed(stage_fingerprint)],
        "clean": True,
    }


def agreement_task(item: Loaded, recipes: dict[str, Recipe]) -> dict[str, Any]:
    """Task dict of agreement:<recipe>: the top-1 agreement matrix across the declared models."""
    from modelbuild.stages import agreement_stage

    recipe = item.recipe
    try:
        refs = agreement_stage.resolve(recipe, recipes, item.root)
    except agreement_stage.AgreementError as err:
        return {"name": item.name, "actions": [lambda error=err: TaskFailed(f"{item.path.name}: {error}")],
                "uptodate": [False]}
    deps = [*(str(item.root / s) for s in recipe.agreement.samples or recipe.validate_.samples), *labels_deps(item)]
    for ref in refs:
        if ref.kind == "torch":
            deps += model_file_deps(Loaded.of(ref.recipe, item.root))
        else:
            deps.append(str(dependency_file(ref.path)))
    outputs = [item.artifact_dir / f"agreement.{ext}" for ext in ("json", "md", "html")]
    stage_fingerprint = fingerprint.agreement_fingerprint(recipe, [(r.name, r.kind, str(r.path)) for r in refs])
    return {
        "name": item.name,
        "doc": f"top-1 agreement of {', '.join(recipe.agreement.models)}",
        "actions": [(run_stage, [item, "agreement", outputs[0], agreement_stage.agreement,
                                 (recipe, item.root, refs, item.artifact_dir), stage_fingerprint])],
        "file_dep": sorted(set(deps)),
        "targets": [str(p) for p in outputs],
        "uptodate": [config_changed(stage_fingerprint)],
        "clean": True,
    }


def build_task(item: Loaded) -> dict[str, Any]:
    """Task dict of build:<recipe>: a group over its stages, or a failing task for a broken recipe."""
    if item.error is not None:
        return {"name": item.name, "doc": f"{item.path.name} has errors",
                "actions": [lambda error=item.error: TaskFailed(str(error))], "uptodate": [False]}
    deps = [f"onnx:{item.name}"] + [f"coreml:{item.name}.{v}" for v in item.recipe.coreml] + [f"validate:{item.name}"]
    if item.recipe.agreement is not None:
        deps.append(f"agreement:{item.name}")
    return {"name": item.name, "doc": f"build every artifact of {item.path.relative_to(item.root)}",
            "actions": None, "task_dep": deps, "clean": [(atomic.remove, [item.artifact_dir])]}


_SHOWN_WARNINGS: set[str] = set()


def run_stage(item: Loaded, key: str, artifact: Path, stage: Callable, args: tuple,
              stage_fingerprint: dict[str, Any]) -> TaskFailed | None:
    """doit action: run one stage, record it in the manifest, print one summary line.

    A failure becomes one line naming the recipe file and the stage, not a traceback
    (set MODELBUILD_TRACEBACK=1 to get the traceback).
    """
    print(f"    why: {why_rerun(item, key, artifact, stage_fingerprint)}")
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BuildWarning)
            entry = stage(*args)
        for warning in caught:
            if issubclass(warning.category, BuildWarning) and str(warning.message) not in _SHOWN_WARNINGS:
                _SHOWN_WARNINGS.add(str(warning.message))  # once per doit run, not once per stage
                print(f"    warning: {warning.message}")
    except Exception as err:  # stages run user models and third-party converters: report, don't crash
        if os.environ.get("MODELBUILD_TRACEBACK"):
            raise
        return TaskFailed(f"{item.path.relative_to(item.root)}: {key}: {type(err).__name__}: {err}")
    from modelbuild.hashing import artifact_sha256

    digest = artifact_sha256(artifact)
    if artifact.suffix == ".mlpackage":
        atomic.write_text(artifact.with_name(artifact.name + ".sha256"), digest + "\n")
    manifest.record_artifact(item.artifact_dir, item.name, key, {
        "file": artifact.name, "sha256": digest, "recipe_file": str(item.path.relative_to(item.root)),
        "fingerprint": stage_fingerprint, **entry})
    print(f"    {artifact.relative_to(item.root)}  ({time.perf_counter() - started:.1f} s)")
    return None


def why_rerun(item: Loaded, key: str, artifact: Path, stage_fingerprint: dict[str, Any]) -> str:
    """Why a stage runs: first build, missing artifact, the recipe fields or tools that changed, or its files."""
    previous = manifest.read_manifest(item.artifact_dir).get("artifacts", {}).get(key)
    if previous is None:
        return "first build"
    if not artifact.exists():
        return f"{artifact.name} is missing"
    changed = fingerprint.changed_fields(previous.get("fingerprint", {}), stage_fingerprint)
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return ", ".join(changed[:3]) + more + " changed"
    return "an input file changed (weights, model source, upstream artifact or samples)"


def _valid(root: Path) -> list[Loaded]:
    return [item for item in load_project(root) if item.recipe is not None]


def task_onnx():
    """Export each recipe's model to ONNX."""
    for item in _valid(Path.cwd()):
        yield onnx_task(item)


def task_coreml():
    """Convert each recipe's Core ML variants."""
    for item in _valid(Path.cwd()):
        for variant in item.recipe.coreml:
            yield coreml_task(item, variant)


def task_validate():
    """Validate each recipe's artifacts against PyTorch."""
    for item in _valid(Path.cwd()):
        yield validate_task(item)


def task_agreement():
    """Top-1 agreement matrices of the recipes that declare one."""
    valid = _valid(Path.cwd())
    recipes = {item.name: item.recipe for item in valid}
    for item in valid:
        if item.recipe.agreement is not None:
            yield agreement_task(item, recipes)


def task_build():
    """Build every artifact of each recipe."""
    for item in load_project(Path.cwd()):
        yield build_task(item)
