"""Model patches: named, documented, tested edits of the PyTorch model before export and tracing.

A recipe lists them under `model.patches`; they run in order after the model is
built and its weights are loaded, before `model.normalize` wraps it:

    model:
      factory: torchvision.models:mobilenet_v3_small
      patches:
        - {step: torch::replace_modules, type: "torch.nn:Hardswish", factory: "mypkg.mod:MyHardswish"}
        - {step: torch::calibrate}

One registry, `TORCH_PATCHES` (target 'torch', ids `torch::<name>`), built on the
surgery registry: a patch is a strict pydantic model with a "Given: ... Result: ..."
docstring whose `apply(model, context)` edits an nn.Module (the context holds the
recipe and the project root). Patches in `ALWAYS_APPLIED` run on every PyTorch model
first, listed or not. `torch_patch_models()` gives the models by id for the recipe
schema's discriminated union on `step`.

Importing this package imports pydantic only; the registry imports the patch modules
when first asked for a patch, and torch is imported when a patch is applied.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from modelbuild.patches.registry import (
    ALWAYS_APPLIED,
    TORCH_PATCHES,
    ModelPatch,
    PatchContext,
    PatchError,
    apply_patches,
    parse_patches,
)

if TYPE_CHECKING:
    from modelbuild.recipe import Recipe


def torch_patch_models() -> dict[str, type[ModelPatch]]:
    """Patch id -> parameter model of every model patch (a pydantic model with a `step` Literal)."""
    return TORCH_PATCHES.models()  # type: ignore[return-value]


def patch_model(model: Any, recipe: Recipe, root: Path, samples: Callable[[], list[Any]] | None = None) -> Any:
    """Apply ALWAYS_APPLIED, then the recipe's model.patches; a failure names the patch's place in the recipe.
    `samples`: makes the recipe's validation samples (`PatchContext.samples`)."""
    context = PatchContext(recipe, root, samples)
    model = apply_patches(model, ALWAYS_APPLIED, context)
    for index, patch in enumerate(recipe.model.patches):
        try:
            model = patch.apply(model, context)
        except PatchError as err:
            raise PatchError(f"model.patches.{index}: {err}") from err
    return model


__all__ = [
    "ALWAYS_APPLIED",
    "TORCH_PATCHES",
    "ModelPatch",
    "PatchContext",
    "PatchError",
    "apply_patches",
    "parse_patches",
    "patch_model",
    "torch_patch_models",
]
