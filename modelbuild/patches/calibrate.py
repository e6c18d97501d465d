"""torch::calibrate: a random initialisation whose outputs are worth comparing."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Literal

from pydantic import Field

from modelbuild.patches.registry import TORCH_PATCHES, ModelPatch, PatchContext, Problem

if TYPE_CHECKING:
    from torch import nn

    from modelbuild.recipe import Recipe


@TORCH_PATCHES.register
class Calibrate(ModelPatch):
    """Calibrate a model without weights: norm statistics from the samples, degenerate weights redrawn.

    Given: mobilenet_v3_small(weights=None): BatchNorm running stats (0, 1), classifier Linear
           weights N(0, 0.01^2); logits ~1e-10 on real images (vit_b_16: a zero head, logits exactly 0)
    Result: running mean/var of every BatchNorm (and InstanceNorm tracking stats) = the cumulative
            average over all validation samples (recipe's validate.samples or random inputs);
            all-zero weights (a zero head, zero-init residual BN scales) and Linear weights whose RMS
            is below redraw_below / sqrt(fan_in) redrawn: rank >= 2 from N(0, 1/fan_in), rank 1
            (norm scales) from N(1, 0.1^2); logits with a spread of order 1 across samples and classes
    Weights are redrawn first (in module order, from a generator seeded with model.seed), then the
    statistics are estimated with only the norm layers in train mode; the model ends in eval mode.
    The same recipe gives bit-identical weights in every build. For models without model.weights.
    """

    step: Literal["torch::calibrate"] = "torch::calibrate"
    statistics: bool = Field(True, description="Re-estimate the running statistics of norm layers from the "
                                               "validation samples.")
    redraw: bool = Field(True, description="Redraw all-zero and too-small weights (see redraw_below).")
    redraw_below: float = Field(0.5, ge=0, description="Redraw a Linear weight whose RMS is below this multiple "
                                                      "of 1/sqrt(fan_in), the variance-preserving scale (all-zero "
                                                      "weights of any layer are always redrawn).")

    def recipe_problems(self, recipe: Recipe) -> Iterator[Problem]:
        if recipe.model.weights is not None:
            yield (), (f"{self.step} re-estimates statistics and redraws weights of an untrained model; it would "
                       f"overwrite the trained ones of model.weights (remove one of the two)")
        if self.statistics and not recipe.validate_.samples and recipe.validate_.random_samples == 0:
            yield (), (f"{self.step} estimates statistics from the validation samples, but validate has no samples "
                       f"and random_samples is 0 (give samples, random_samples >= 1, or statistics: false)")

    def file_deps(self, recipe: Recipe) -> list[str]:
        return list(recipe.validate_.samples) if self.statistics else []

    def reads(self, recipe: Recipe) -> dict[str, Any]:
        if not self.statistics:
            return {}
        denoise = recipe.validate_.denoise
        return {"validate.samples": list(recipe.validate_.samples),
                "validate.random_samples": recipe.validate_.random_samples,
                "validate.denoise": denoise.model_dump(mode="json") if denoise else None}

    def apply(self, model: nn.Module, context: PatchContext) -> nn.Module:
        from modelbuild.patches.calibration import calibrate  # torch

        calibrate(model, context, statistics=self.statistics, redraw_below=self.redraw_below if self.redraw else None)
        return model
