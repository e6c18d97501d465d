"""The model patch registry: edits of the PyTorch model between weight loading and export.

A patch is a surgery-style step (a strict pydantic model with a `step` id such as
`torch::replace_modules`, a "Given: ... Result: ..." docstring and documented
parameters) whose `apply(model, context)` edits an nn.Module and returns it.
The context carries what some patches read besides the model: the recipe, the
project root and the recipe's samples. Patches may also declare, without torch, what they need from
the recipe (`recipe_problems`), which project files they read (`file_deps`) and
which recipe fields outside `model` (`reads`).

This module imports only pydantic.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from modelbuild.surgery.registry import StepRegistry, SurgeryError, SurgeryStep

if TYPE_CHECKING:
    from modelbuild.recipe import Recipe

TORCH_PATCHES = StepRegistry("torch", "PyTorch", noun="model patch", plural="model patches",
                             modules=tuple(f"modelbuild.patches.{name}" for name in ("attention", "calibrate",
                                                                                      "modules")))

# Patches every PyTorch model gets, before the ones its recipe lists.
ALWAYS_APPLIED = ({"step": "torch::disable_mha_fastpath"},)

Problem = tuple[tuple, str]


class PatchError(SurgeryError):
    """A model patch cannot be applied to this model (the message says why and what would work)."""


@dataclass(frozen=True)
class PatchContext:
    """What a patch may read besides the model: the recipe being built, its project root, and its
    validation samples (`samples()` makes them, as `modelbuild.samples.make_samples` does, when a patch
    asks: torch::calibrate estimates norm statistics on them)."""

    recipe: Recipe
    root: Path
    samples: Callable[[], list[Any]] | None = None


class ModelPatch(SurgeryStep):
    """Base class of every model patch: strict parameters, `apply(model, context) -> model`."""

    def apply(self, model: Any, context: PatchContext) -> Any:  # type: ignore[override]  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} does not implement apply().")

    def recipe_problems(self, recipe: Recipe) -> Iterator[Problem]:
        """Problems this patch can see in the recipe before anything is built: (path below the patch, message)."""
        return iter(())

    def file_deps(self, recipe: Recipe) -> list[str]:
        """Project files (relative to the root) that applying this patch reads."""
        return []

    def reads(self, recipe: Recipe) -> dict[str, Any]:
        """Recipe fields outside `model` and the interface that applying this patch reads, by dotted path
        (JSON values: they join the fingerprint of every stage that builds the model)."""
        return {}


def parse_patches(patches: Iterable[ModelPatch | dict[str, Any]]) -> list[ModelPatch]:
    """Validate a list of patches (instances or dicts such as {'step': 'torch::calibrate'})."""
    return [TORCH_PATCHES.parse(raw) for raw in patches]  # type: ignore[misc]


def apply_patches(model: Any, patches: Iterable[ModelPatch | dict[str, Any]], context: PatchContext) -> Any:
    """Apply `patches` in order and return the patched model (a patch may replace the root module)."""
    for patch in parse_patches(patches):
        model = patch.apply(model, context)
    return model

