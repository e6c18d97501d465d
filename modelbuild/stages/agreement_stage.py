"""Agreement stage: run the declared models on the samples, write the top-1 agreement matrix."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelbuild import atomic
from modelbuild.labels import resolve_labels
from modelbuild.project import ARTIFACTS
from modelbuild.recipe import Recipe
from modelbuild.stage_records import failed_stages

class AgreementError(ValueError):
    """A model reference that names nothing buildable or loadable."""

@dataclass(frozen=True)
class ModelRef:
    """A resolved agreement model: which recipe it belongs to (if any), its kind and its file."""

    name: str
    kind: str  # "torch", "onnx", "coreml" or "file"
    recipe: Recipe | None
    path: Path | None  # the artifact or file (None for torch)
    variant: str | None = None

def resolve(recipe: Recipe, recipes: dict[str, Recipe], root: Path) -> list[ModelRef]:
    """Resolve every reference of recipe.agreement against this recipe, the other recipes and files."""
    refs = []
    for name, reference in recipe.agreement.models.items():
        if reference.endswith((".onnx", ".mlmodel", ".mlpackage")):
            refs.append(ModelRef(name, "file", None, root / reference))
            continue
        owner_name, _, model = reference.rpartition(":")
        owner = recipes.get(owner_name) if owner_name else recipe
        if owner is None:
            raise AgreementError(f"agreement.models.{name}: no recipe named {owner_name!r}; "
                                 f"expected one of {', '.join(sorted(recipes))}")
        folder = root / ARTIFACTS / owner.name
        if model == "torch":
            refs.append(ModelRef(name, "torch", owner, None))
        elif model == "onnx":
            refs.append(ModelRef(name, "onnx", owner, folder / owner.onnx_file))
        elif model in owner.coreml:
            refs.append(ModelRef(name, "coreml", owner, folder / owner.coreml_file(model), model))
        else:
            raise AgreementError(f"agreement.models.{name}: recipe {owner.name!r} has no model {model!r}; expected "
                                 f"torch, onnx or one of {', '.join(owner.coreml) or '(no variants)'}")
    return refs

def agreement(recipe: Recipe, root: Path, refs: list[ModelRef], artifact_dir: Path) -> dict[str, Any]:
    """Run each model on the samples; write agreement.json/.md/.html; print the matrix."""
    # numpy and PIL: task creation imports this module (for `resolve`)
    from modelbuild.samples import make_samples
    from modelbuild.validation.agreement import AgreementMatrix, scores, top_k

    samples_recipe = recipe
    if recipe.agreement.samples:
        validate = recipe.validate_.model_copy(update={"samples": recipe.agreement.samples, "denoise": None})
        samples_recipe = recipe.model_copy(update={"validate_": validate})
    samples = make_samples(samples_recipe, root)
    labels = resolve_labels(recipe.classifier.labels, root) if recipe.classifier else None
    missing = _not_built(refs, root)
    refs = [ref for ref in refs if ref.name not in missing]
    if len(refs) < 2:
        raise AgreementError("fewer than two models to compare; failed to build: "
                             + "; ".join(f"{name} ({error})" for name, error in missing.items()))
    result = AgreementMatrix([r.name for r in refs], [s.name for s in samples], labels=labels)
    for ref in refs:
        runner = _runner(ref, root)
        result.top1[ref.name] = [top_k(scores(runner.run(runner.effective_feeds(s.feeds)), labels), 1)[0]
                                 for s in samples]
    atomic.write_text(artifact_dir / "agreement.json", json.dumps(result.to_json(), indent=2) + "\n")
    atomic.write_text(artifact_dir / "agreement.md", result.markdown())
    atomic.write_text(artifact_dir / "agreement.html", result.html())
    matrix = result.matrix()
    width = max(len(name) for name in result.models) + 5
    print("    " + " " * width + "  ".join(f"{f'[{i}]':>4}" for i in range(1, len(refs) + 1)))
    for i, (name, row) in enumerate(zip(result.models, matrix), start=1):
        print(f"    {f'[{i}] {name}':<{width}}" + "  ".join(f"{v:>4.0%}" for v in row))
    if missing:
        raise AgreementError("not in the matrix because they failed to build: "
                             + "; ".join(f"{name} ({error})" for name, error in missing.items()))
    return {"models": result.models, "samples": len(samples), "min_agreement": float(matrix.min())}

def _not_built(refs: list[ModelRef], root: Path) -> dict[str, str]:
    """Models whose artifact stage failed at its last run: name -> one-line error."""
    missing = {}
    for ref in refs:
        if ref.kind in ("onnx", "coreml"):
            key = "onnx" if ref.kind == "onnx" else f"coreml.{ref.variant}"
            missing.update({ref.name: error for error in
                            failed_stages(root / ARTIFACTS / ref.recipe.name, [key]).values()})
    return missing

def _runner(ref: ModelRef, root: Path):
    from modelbuild.validation.runners import CoreMLRunner, OnnxRunner, TorchRunner  # numpy, as above

    if ref.kind == "torch":
        from modelbuild.shared_model import shared_model  # numpy, as above

        return TorchRunner(shared_model(ref.recipe, root), list(ref.recipe.outputs))
    if ref.kind == "onnx" or (ref.kind == "file" and ref.path.suffix == ".onnx"):
        return OnnxRunner(ref.path, ref.name)
    if ref.kind == "file":
        return CoreMLRunner(ref.path, ref.name, {}, {})
    spec = ref.recipe.coreml[ref.variant]
    classifier = None
    if ref.recipe.is_classifier(ref.variant):
        classifier = (next(iter(ref.recipe.outputs)), ref.recipe.classifier.probabilities_output,
                      resolve_labels(ref.recipe.classifier.labels, root))
    return CoreMLRunner(ref.path, ref.name, spec.image_inputs, spec.image_outputs, classifier=classifier)
