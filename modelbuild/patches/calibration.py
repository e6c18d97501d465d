"""Calibrated random initialisation (imports torch): redraw degenerate weights, re-estimate norm statistics.

Used by torch::calibrate. Deterministic: weights come from one generator seeded
with the recipe's model.seed, drawn in module order; statistics from the
recipe's validation samples fed one after another in their order, on one thread
(float sums in one order, so the bits do not depend on the process's thread count).
"""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from modelbuild.diagnostics import BuildWarning
from modelbuild.patches.registry import PatchContext, PatchError
from modelbuild.zoo.normalize import Normalized

if TYPE_CHECKING:
    from modelbuild.recipe import Recipe

SCALE_STD = 0.1  # spread of a redrawn rank-1 weight (a norm scale) around 1


def calibrate(model: nn.Module, context: PatchContext, *, statistics: bool, redraw_below: float | None) -> None:
    """Redraw degenerate weights (unless redraw_below is None), then re-estimate norm statistics; eval mode."""
    recipe = context.recipe
    model.eval()
    redrawn = [] if redraw_below is None else redraw_weights(
        model, torch.Generator().manual_seed(recipe.model.seed), redraw_below)
    norms = reestimate_statistics(model, context) if statistics else []
    if not redrawn and not norms:
        warnings.warn(f"{recipe.name}: torch::calibrate changed nothing: the model has no norm layer with running "
                      f"statistics and no all-zero or too-small weight", BuildWarning, stacklevel=2)


def redraw_weights(model: nn.Module, generator: torch.Generator, redraw_below: float) -> list[str]:
    """Redraw each module's `weight` that is all zero, or a Linear weight with RMS < redraw_below / sqrt(fan_in).

    Rank >= 2: N(0, 1/fan_in), fan_in = weight[0].numel() (in_features; in_channels/groups * kernel).
    Rank 1, all zero: N(1, SCALE_STD^2). Convolution weights are redrawn only when all zero: their
    fan-out initialisations (depthwise, squeeze-excitation) are small by fan_in and fine. Returns
    the qualified names of the modules redrawn.
    """
    redrawn = []
    with torch.no_grad():
        for name, module in model.named_modules():
            weight = module._parameters.get("weight")
            if weight is None or weight.numel() == 0 or weight.ndim == 0:
                continue
            all_zero = not bool(weight.any())
            if weight.ndim >= 2:
                std = 1.0 / math.sqrt(weight[0].numel())
                rms = float(weight.double().pow(2).mean().sqrt())
                too_small = isinstance(module, nn.Linear) and rms < redraw_below * std
                if all_zero or too_small:
                    weight.copy_(torch.empty_like(weight).normal_(0.0, std, generator=generator))
                    redrawn.append(name)
            elif all_zero:
                weight.copy_(torch.empty_like(weight).normal_(1.0, SCALE_STD, generator=generator))
                redrawn.append(name)
    return redrawn


def running_stat_norms(model: nn.Module) -> list[tuple[str, _NormBase]]:
    """Norm layers that keep running statistics (BatchNorm*, InstanceNorm* with track_running_stats)."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, _NormBase) and module.track_running_stats and module.running_mean is not None]


def reestimate_statistics(model: nn.Module, context: PatchContext) -> list[str]:
    """Reset the running statistics and average them over every validation sample (momentum None).

    Only the norm layers are in train mode meanwhile (dropout, stochastic depth stay off); their
    momentum is put back afterwards. A norm layer that sees one value per channel (BatchNorm after a
    global pool, batch of 1) has no statistics to estimate: it runs in eval mode and keeps mean 0,
    variance 1. Returns the qualified names of the layers re-estimated.
    """
    norms = running_stat_norms(model)
    if not norms:
        return []
    if context.samples is None:
        raise PatchError("torch::calibrate estimates norm statistics on the recipe's validation samples, but the "
                         "patch context has none (build the model with modelbuild.torch_model.build_model)")
    recipe, samples = context.recipe, context.samples()
    runner = _as_built(model, recipe)
    momenta = [module.momentum for _, module in norms]
    threads = torch.get_num_threads()
    for _, module in norms:
        module.reset_running_stats()
        module.momentum = None
        module.train()
    single_valued: set[str] = set()
    hooks = [module.register_forward_pre_hook(_skip_single_values(name, single_valued)) for name, module in norms]
    try:
        torch.set_num_threads(1)  # reductions summed in one order whatever the thread count of the process
        with torch.no_grad():
            for sample in samples:
                inputs = [torch.from_numpy(sample.feeds[name]) for name in recipe.inputs]
                try:
                    runner(*inputs)
                except Exception as err:  # user model code
                    raise PatchError(_forward_failure(sample.name, err)) from err
    finally:
        torch.set_num_threads(threads)
        for hook in hooks:
            hook.remove()
        for name, module in norms:
            if name in single_valued:  # stays as if never estimated, whichever sample first saw one value
                module.reset_running_stats()
        for (_, module), momentum in zip(norms, momenta):
            module.momentum = momentum
            module.eval()
    return [name for name, _ in norms if name not in single_valued]


def _skip_single_values(name: str, single_valued: set[str]):
    """A forward pre-hook: the norm layer runs in eval mode for inputs with one value per channel."""
    def hook(module: nn.Module, args: tuple) -> None:
        values = args[0]
        one_per_channel = values.ndim >= 2 and values.numel() == values.shape[1]
        if one_per_channel:
            single_valued.add(name)
        module.train(not one_per_channel and name not in single_valued)
    return hook


def _as_built(model: nn.Module, recipe: Recipe) -> nn.Module:
    """The model as the build will call it: behind model.normalize when the recipe has one."""
    if recipe.model.normalize is None:
        return model

    return Normalized(model, recipe.model.normalize.mean, recipe.model.normalize.std)


def _forward_failure(sample: str, err: Exception) -> str:
    return f"torch::calibrate: running validation sample {sample!r} through the model failed: {err}"
