"""Build the PyTorch model a recipe describes, and its example inputs.

Imports torch: call only from inside build actions, never at task creation.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from modelbuild.diagnostics import BuildWarning
from modelbuild.feeds import generated_inputs
from modelbuild.model_outputs import select_outputs
from modelbuild.patches import PatchError, patch_model
from modelbuild.recipe import Recipe
from modelbuild.references import ModelBuildError, import_factory
from modelbuild.samples import make_samples


def build_model(recipe: Recipe, root: Path) -> "torch.nn.Module":
    """Construct the model (seeded), call its init method, load weights, switch to eval mode,
    apply the model patches (see modelbuild.patches), wrap it in model.normalize."""
    import torch

    source = recipe.model
    torch.manual_seed(source.seed)
    factory = import_factory(source.factory)
    try:
        model = factory(**source.args)
    except Exception as err:  # the factory is user code: report whatever it raised
        raise ModelBuildError(f"model.factory: {source.factory}(**{source.args}) failed: {err}") from err
    if not isinstance(model, torch.nn.Module):
        raise ModelBuildError(f"model.factory: {source.factory} returned {type(model).__name__}, not a torch.nn.Module")
    if source.init:
        method = getattr(model, source.init, None)
        if not callable(method):
            raise ModelBuildError(f"model.init: {type(model).__name__} has no method {source.init!r}")
        method()
    if source.weights is None:
        warnings.warn(f"{recipe.name}: no model.weights in the recipe; building with a random "
                      f"initialisation (seed {source.seed})", BuildWarning, stacklevel=2)
    else:
        load_weights(model, root / source.weights.path, source.weights)
    try:
        model = patch_model(model.eval(), recipe, root, samples=lambda: make_samples(recipe, root))
    except PatchError as err:
        raise ModelBuildError(str(err)) from err
    if source.normalize is not None:
        from modelbuild.zoo.normalize import Normalized  # torch

        model = Normalized(model, source.normalize.mean, source.normalize.std)
    return select_outputs(model.eval(), recipe)


def load_weights(model: "torch.nn.Module", path: Path, spec) -> None:
    """Load a state dict with the recipe's key rewriting; list missing/unexpected keys on failure."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelBuildError(f"model.weights.path: cannot load {path} as a torch state dict: {err}") from None
    if spec.key is not None:
        if not isinstance(state, dict) or spec.key not in state:
            keys = ", ".join(map(str, list(state)[:10])) if isinstance(state, dict) else type(state).__name__
            raise ModelBuildError(f"model.weights.key: {path} has no key {spec.key!r}; it has {keys}")
        state = state[spec.key]
    state = {rewrite_key(k, spec.strip_prefix, spec.rename): v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    if spec.strict and (result.missing_keys or result.unexpected_keys):
        raise ModelBuildError(
            f"model.weights: {path} does not fit {type(model).__name__} after renaming: "
            f"missing keys {_short(result.missing_keys)}; unexpected keys {_short(result.unexpected_keys)} "
            f"(use strip_prefix / rename to map the names)")


def rewrite_key(key: str, strip_prefix: str, rename: dict[str, str]) -> str:
    """Apply strip_prefix, then the first matching prefix rename."""
    if strip_prefix and key.startswith(strip_prefix):
        key = key[len(strip_prefix):]
    for old, new in rename.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _short(keys: list[str], limit: int = 8) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def example_inputs(recipe: Recipe, seed: int = 0) -> dict[str, "torch.Tensor"]:
    """Deterministic example tensors of the declared dtypes (see `modelbuild.feeds.generated_inputs`)."""
    import torch

    return {name: torch.from_numpy(value) for name, value in generated_inputs(recipe, seed).items()}
