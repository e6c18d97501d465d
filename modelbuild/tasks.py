"""The doit task graph, generated as plain dicts from the recipes.

Task creation is pure and cheap: it loads the YAML recipes (pyyaml, pydantic)
and never imports torch, onnx or coremltools; the actions do that when they run.

Per recipe r:
  onnx:r            model + weights -> artifacts/r/<r>.onnx
  coreml:r.<v>      ONNX file or torch model -> artifacts/r/<file>.mlmodel|.mlpackage
  validate:r        PyTorch vs onnxruntime vs Core ML -> artifacts/r/report.{json,md,html}
  agreement:r       top-1 agreement matrix of the models the recipe lists (optional)
  build:r           all of the above (`doit build` builds every recipe)

The artifact stages run as private tasks (`_onnx:r`, `_coreml:r.<v>`) that record a failure
instead of failing, so that validation still reports every other artifact; `onnx:r` and
`coreml:r.<v>` run such a task, then its verdict, which fails when it failed.
`modelbuild.reporter.StageReporter` shows the private stages under their public names. A recipe
whose tasks cannot be made (a bug) gets one failing build task, like a recipe that does not load.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from doit.exceptions import TaskFailed

from modelbuild import atomic, fingerprint
from modelbuild.file_checker import HashCachingChecker
from modelbuild.file_deps import StageInputs, compression_deps, in_project, labels_deps, model_file_deps
from modelbuild.manifest import manifest_is_current, repair_manifest
from modelbuild.project import Loaded, load_project
from modelbuild.recipe import Recipe, RecipeError
from modelbuild.reporter import VERDICT, StageReporter
from modelbuild.stage_run import StageUptodate, run_stage, verdict
from modelbuild.stages import agreement_stage

__all__ = ["DOIT_CONFIG", "task_onnx", "task__onnx", "task_coreml", "task__coreml", "task_validate",
           "task_agreement", "task__manifest", "task_build"]


DOIT_CONFIG = {
    "default_tasks": ["build"],
    "verbosity": 2,
    "dep_file": ".doit.db",
    "backend": "json",
    "reporter": StageReporter,
    "check_file_uptodate": HashCachingChecker,
}


def onnx_file(item: Loaded) -> Path:
    """Where the recipe's ONNX artifact goes."""
    return item.artifact_dir / item.recipe.onnx_file


def coreml_target(item: Loaded, variant: str) -> Path:
    """The doit target of a Core ML variant (see `dependency_file`)."""
    return dependency_file(item.artifact_dir / item.recipe.coreml_file(variant))


def dependency_file(artifact: Path) -> Path:
    """What doit tracks for an artifact: the file itself, or the digest file beside a .mlpackage folder."""
    return artifact.with_name(artifact.name + ".sha256") if artifact.suffix == ".mlpackage" else artifact


def stage_task_name(recipe: str, key: str) -> str:
    """The private task of a recipe's artifact stage: '_onnx:r' for 'onnx', '_coreml:r.v' for 'coreml.v'."""
    stage, _, variant = key.partition(".")
    return f"_{stage}:{recipe}" + (f".{variant}" if variant else "")


def uptodate(item: Loaded, key: str, outputs: list[Path], stage_fingerprint: dict,
             upstream: list[tuple[str, str]] = ()) -> list:
    """The doit uptodate of stage `key`: fingerprint, outputs and the artifact stages ((recipe, key) pairs) it reads."""
    return [StageUptodate(item, key, outputs, stage_fingerprint, [stage_task_name(r, k) for r, k in upstream])]


def stage_action(item: Loaded, key: str, outputs: list[Path], stage: str, args: tuple, stage_fingerprint: dict,
                 inputs: StageInputs, requires: tuple[str, ...] = (), terminal: bool = False) -> tuple:
    """The doit action of stage `key` (see `modelbuild.stage_run.run_stage`); `inputs`: what it reads besides its
    fingerprint (its file_dep and upstream stages), which its cache key hashes."""
    return (run_stage, [item, key, outputs, stage, args, stage_fingerprint, inputs, requires, terminal])


def onnx_task(item: Loaded) -> dict[str, Any]:
    """Task dict of _onnx:<recipe>, the export (public as onnx:<recipe>)."""
    target = onnx_file(item)
    stage_fingerprint = fingerprint.onnx_fingerprint(item.recipe)
    deps = model_file_deps(item)
    return {
        "name": item.name,
        "doc": f"export {item.name} to {target.relative_to(item.root)}",
        "actions": [stage_action(item, "onnx", [target], "modelbuild.stages.onnx_stage:export_onnx",
                                 (item.recipe, item.root, target), stage_fingerprint, StageInputs(tuple(deps)))],
        "file_dep": deps,
        "targets": [in_project(item, target)],
        "uptodate": uptodate(item, "onnx", [target], stage_fingerprint),
        "clean": True,
    }


def coreml_task(item: Loaded, variant: str) -> dict[str, Any]:
    """Task dict of _coreml:<recipe>.<variant>, one conversion (public as coreml:<recipe>.<variant>)."""
    spec = item.recipe.coreml[variant]
    artifact = item.artifact_dir / item.recipe.coreml_file(variant)
    target = coreml_target(item, variant)
    deps = [] if spec.frontend == "onnx" else model_file_deps(item)
    if item.recipe.is_classifier(variant):
        deps += labels_deps(item)
    args = (item.recipe, item.root, variant, onnx_file(item), artifact)
    stage_fingerprint = fingerprint.coreml_fingerprint(item.recipe, variant)
    requires = ("onnx",) if spec.frontend == "onnx" else ()
    doc = f"convert {item.name} to {artifact.relative_to(item.root)} ({spec.frontend} -> {spec.format})"
    if spec.from_variant is not None:  # compresses another variant's artifact: no conversion of its own
        deps, requires = compression_deps(item, variant), (f"coreml.{spec.from_variant}",)
        doc = f"compress {item.name}.{spec.from_variant} to {artifact.relative_to(item.root)}"
    elif spec.compression is not None:
        deps += compression_deps(item, variant)
    upstream = [(item.name, key) for key in requires]
    inputs = StageInputs(tuple(deps), tuple(upstream))
    return {
        "name": f"{item.name}.{variant}",
        "doc": doc,
        "actions": [stage_action(item, f"coreml.{variant}", [artifact], "modelbuild.stages.coreml_stage:build_coreml",
                                 args, stage_fingerprint, inputs, requires)],
        "file_dep": deps,
        "targets": [in_project(item, target)],
        "uptodate": uptodate(item, f"coreml.{variant}", [artifact], stage_fingerprint, upstream),
        "clean": [(atomic.remove, [artifact]), (atomic.remove, [target])],
    }


def public_task(item: Loaded, stage_task: dict[str, Any], key: str) -> dict[str, Any]:
    """The public task of a private stage (`onnx:r` for `_onnx:r`): run it, then fail if its last run failed
    (the verdict always runs: it only reads the stage's record)."""
    return {"name": stage_task["name"], "doc": stage_task["doc"], "actions": [(verdict, [item, key])],
            "clean": stage_task["clean"], "task_dep": [stage_task_name(item.name, key)], "uptodate": [False],
            "meta": {VERDICT: True}}


def manifest_task(item: Loaded) -> dict[str, Any]:
    """Task dict of _manifest:<recipe>: rebuild manifest.json from the stage records when it is missing or wrong."""
    return {"name": item.name, "actions": [(repair_manifest, [item.artifact_dir, item.name])],
            "uptodate": [manifest_is_current(item.artifact_dir, item.name)]}


def artifact_stages(item: Loaded) -> list[tuple[str, str]]:
    """The recipe's artifact stages, as (recipe, key) pairs: the ONNX export and every Core ML variant."""
    return [(item.name, "onnx"), *((item.name, f"coreml.{v}") for v in item.recipe.coreml)]


def validate_task(item: Loaded) -> dict[str, Any]:
    """Task dict of validate:<recipe>: compare every artifact with PyTorch, write the reports."""
    recipe = item.recipe
    reports = [item.artifact_dir / name for name in ("report.json", "report.md", "report.html")]
    deps = [*model_file_deps(item), *labels_deps(item),
            *(in_project(item, item.root / sample) for sample in recipe.validate_.samples)]
    stage_fingerprint = fingerprint.validation_fingerprint(recipe)
    upstream = artifact_stages(item)
    return {
        "name": item.name,
        "doc": f"compare {item.name}'s artifacts with PyTorch; write {reports[0].parent.relative_to(item.root)}/report.*",
        "actions": [stage_action(item, "validate", reports, "modelbuild.stages.validate_stage:validate",
                                 (recipe, item.root, item.artifact_dir), stage_fingerprint,
                                 StageInputs(tuple(deps), tuple(upstream)), terminal=True)],
        "file_dep": deps,
        "targets": [in_project(item, r) for r in reports],
        "uptodate": uptodate(item, "validate", reports, stage_fingerprint, upstream),
        "clean": True,
    }


def agreement_task(item: Loaded, recipes: dict[str, Recipe]) -> dict[str, Any]:
    """Task dict of agreement:<recipe>: the top-1 agreement matrix across the declared models."""
    recipe = item.recipe
    try:
        refs = agreement_stage.resolve(recipe, recipes, item.root)
    except agreement_stage.AgreementError as err:
        return {"name": item.name, "actions": [lambda error=err: TaskFailed(f"{item.path.name}: {error}")],
                "uptodate": [False]}
    deps = [*(in_project(item, item.root / s) for s in recipe.agreement.samples or recipe.validate_.samples),
            *labels_deps(item)]
    upstream, models = [], []
    for ref in refs:
        if ref.kind == "torch":
            deps += model_file_deps(Loaded.of(ref.recipe, item.root))
            models.append(ref.recipe.name)
        elif ref.kind == "file":
            deps.append(in_project(item, dependency_file(ref.path)))
        else:
            upstream.append((ref.recipe.name, "onnx" if ref.kind == "onnx" else f"coreml.{ref.variant}"))
    deps = sorted(set(deps))
    outputs = [item.artifact_dir / f"agreement.{ext}" for ext in ("json", "md", "html")]
    located = [(r.name, r.kind, "None" if r.path is None else in_project(item, r.path)) for r in refs]
    stage_fingerprint = fingerprint.agreement_fingerprint(recipe, located)  # the same in every clone (manifest.json)
    inputs = StageInputs(tuple(deps), tuple(upstream), tuple(dict.fromkeys(models)))
    return {
        "name": item.name,
        "doc": f"top-1 agreement of {', '.join(recipe.agreement.models)}",
        "actions": [stage_action(item, "agreement", outputs, "modelbuild.stages.agreement_stage:agreement",
                                 (recipe, item.root, refs, item.artifact_dir), stage_fingerprint, inputs,
                                 terminal=True)],
        "file_dep": deps,
        "targets": [in_project(item, p) for p in outputs],
        "uptodate": uptodate(item, "agreement", outputs, stage_fingerprint, upstream),
        "clean": True,
    }


def build_task(item: Loaded) -> dict[str, Any]:
    """Task dict of build:<recipe>: a group over its stages, or a failing task for a broken recipe."""
    if item.error is not None:
        return {"name": item.name, "doc": f"{item.path.name} has errors",
                "actions": [lambda error=item.error: TaskFailed(str(error))], "uptodate": [False]}
    deps = [f"_onnx:{item.name}", *(f"_coreml:{item.name}.{v}" for v in item.recipe.coreml), f"validate:{item.name}"]
    if item.recipe.agreement is not None:
        deps.append(f"agreement:{item.name}")
    deps.append(f"_manifest:{item.name}")
    return {"name": item.name, "doc": f"build every artifact of {item.path.relative_to(item.root)}",
            "actions": None, "task_dep": deps, "clean": [(atomic.remove, [item.artifact_dir])]}


def recipe_tasks(item: Loaded, recipes: dict[str, Recipe]) -> dict[str, list[dict[str, Any]]]:
    """Every task dict of one valid recipe, by task creator (onnx, _onnx, coreml, ...)."""
    recipe = item.recipe
    export = onnx_task(item)
    conversions = {v: coreml_task(item, v) for v in recipe.coreml}
    return {
        "onnx": [public_task(item, export, "onnx")],
        "_onnx": [export],
        "coreml": [public_task(item, task, f"coreml.{v}") for v, task in conversions.items()],
        "_coreml": list(conversions.values()),
        "validate": [validate_task(item)],
        "agreement": [agreement_task(item, recipes)] if recipe.agreement is not None else [],
        "_manifest": [manifest_task(item)],
        "build": [build_task(item)],
    }


@lru_cache(maxsize=8)
def project_tasks(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Every task dict of the project by creator; a recipe that fails to load, or whose tasks cannot be
    made, contributes only its failing build task."""
    items = load_project(root)
    recipes = {item.name: item.recipe for item in items if item.recipe is not None}
    tasks: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        mine = {"build": [build_task(item)]}
        if item.recipe is not None:
            try:
                mine = recipe_tasks(item, recipes)
            except Exception as err:  # a bug must cost one recipe, not the whole project
                broken = RecipeError([f"{item.path.relative_to(item.root)}: cannot make its tasks "
                                      f"({type(err).__name__}: {err}); this is a modelbuild bug, please report it"])
                mine = {"build": [build_task(Loaded(item.path, item.root, error=broken))]}
        for creator, dicts in mine.items():
            tasks.setdefault(creator, []).extend(dicts)
    return tasks


def forget_project() -> None:
    """Drop the cached recipes and task dicts (for a process that builds several projects, like the tests)."""
    project_tasks.cache_clear()
    load_project.cache_clear()


def _creator(name: str, doc: str) -> Callable:
    def create():
        yield from project_tasks(Path.cwd()).get(name, [])

    create.__name__, create.__doc__ = f"task_{name}", doc
    return create


task_onnx = _creator("onnx", "Export each recipe's model to ONNX (fails if the export failed).")
task__onnx = _creator("_onnx", "The ONNX exports, recording a failure instead of failing.")
task_coreml = _creator("coreml", "Convert each recipe's Core ML variants (each fails if its conversion failed).")
task__coreml = _creator("_coreml", "The Core ML conversions, recording a failure instead of failing.")
task_validate = _creator("validate", "Validate each recipe's artifacts against PyTorch.")
task_agreement = _creator("agreement", "Top-1 agreement matrices of the recipes that declare one.")
task__manifest = _creator("_manifest", "Rebuild a recipe's manifest.json when it is missing or wrong.")
task_build = _creator("build", "Build every artifact of each recipe.")
