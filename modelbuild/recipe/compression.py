"""The `compression` section of a Core ML variant: what to do to its weights (and activations).

The section is a declaration; `compress` carries it out with the Core ML weight steps of
`modelbuild.surgery.coreml_weights` (prune, then palettize, then quantize, each later one
compressing what the earlier left: coremltools' joint forms), after activation
quantization (`modelbuild.coreml.compression`), which is calibrated on the recipe's
validation samples.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelbuild.surgery.coreml_weights import IOS17, LinearQuantize, Palettize, Prune, WeightStep, check_prune_target


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Quantization(_Strict):
    """Linear weight quantization: w = scale * (q - zero_point), q an 8- or 4-bit integer."""

    dtype: Literal["int8", "uint8", "int4", "uint4"] = Field("int8", description="Quantized type; 4-bit types "
                                                                                 "need ML Program iOS18.")
    mode: Literal["linear_symmetric", "linear"] = Field(
        "linear_symmetric", description="linear_symmetric: range [-max|w|, max|w|] (zero_point 0); "
                                        "linear: [min w, max w].")
    granularity: Literal["per_tensor", "per_channel", "per_block"] = Field(
        "per_channel", description="One scale per weight, per output channel, or per block of block_size input "
                                   "channels (iOS18). NeuralNetwork: per_channel only.")
    block_size: int = Field(32, ge=1, description="Input channels per block (granularity per_block).")


class Palettization(_Strict):
    """Palettization: each weight becomes an nbits index into a table of 2^nbits values."""

    nbits: Literal[1, 2, 3, 4, 6, 8] = Field(description="Bits per weight (3: ML Program iOS18).")
    mode: Literal["kmeans", "uniform"] = Field(
        "kmeans", description="kmeans: the table that minimises the squared error (Lloyd's k-means, seeded); "
                              "uniform: evenly spaced values from min to max.")
    granularity: Literal["per_tensor", "per_grouped_channel"] = Field(
        "per_tensor", description="One table per weight, or one per group_size output channels (iOS18).")
    group_size: int = Field(16, ge=1, description="Output channels per table (granularity per_grouped_channel).")
    per_channel_scale: bool = Field(False, description="Scale each output channel to [-1, 1] before palettizing "
                                                       "and store the scales (iOS18).")
    calibrated: bool = Field(False, description="kmeans: weight each value's error by the energy of the input "
                                                "channel it multiplies, measured by the reference runtime on "
                                                "validate.samples (activation-aware palettes: what FFDNet's "
                                                "official weights need at 6 bits).")

    def step_fields(self) -> dict:
        """The fields the coreml::palettize step takes (calibration is the section's business)."""
        return self.model_dump(exclude={"calibrated"})


class Pruning(_Strict):
    """Magnitude pruning: the smallest weights become zero and are stored sparse (ML Program)."""

    sparsity: float | None = Field(None, gt=0, lt=1, description="Fraction of each weight's values set to zero, "
                                                                 "the smallest in magnitude, e.g. 0.5.")
    n_m: list[int] | None = Field(None, min_length=2, max_length=2, description="[n, m]: n of every m consecutive "
                                                                                "values set to zero, e.g. [2, 4].")

    @model_validator(mode="after")
    def _one_target(self) -> "Pruning":
        check_prune_target(self.sparsity, self.n_m)
        return self


class ActivationQuantization(_Strict):
    """8-bit activations (ML Program iOS17): quantize/dequantize pairs around the ops whose ranges were
    measured on the recipe's validation samples."""

    mode: Literal["linear_symmetric", "linear"] = Field("linear_symmetric",
                                                        description="Range of each activation: symmetric about "
                                                                    "zero, or its measured [min, max].")


class Compression(_Strict):
    """Compress the variant's weights after conversion (ML Program through coremltools.optimize.coreml,
    NeuralNetwork through its quantization utilities). Several methods combine: prune, then palettize
    or quantize the remaining values (coremltools' joint forms, ML Program iOS18), or palettize, then
    quantize the tables."""

    quantize: Quantization | None = Field(None, description="Linear quantization of the weights.")
    palettize: Palettization | None = Field(None, description="Palettization of the weights.")
    prune: Pruning | None = Field(None, description="Magnitude pruning of the weights (ML Program).")
    activations: ActivationQuantization | None = Field(None, description="8-bit activations, calibrated on "
                                                                         "validate.samples (ML Program iOS17).")
    skip_ops: list[str] = Field(default_factory=list, description="Weights to keep as they are, by op: globs on "
                                                                  "ML Program op names (a weight's const or the op "
                                                                  "reading it, e.g. 'conv_0*' for the first layer; "
                                                                  "`modelbuild inspect` lists them) or "
                                                                  "NeuralNetwork layer names.")
    skip_op_types: list[str] = Field(default_factory=list, description="Op types whose weights stay as they are "
                                                                       "(ML Program: conv, linear, ...; "
                                                                       "NeuralNetwork: convolution, innerProduct, "
                                                                       "...).")
    min_weight_elements: int = Field(2048, ge=0, description="Weights with this many elements or fewer stay as "
                                                             "they are (biases, small layers).")

    @model_validator(mode="after")
    def _something(self) -> "Compression":
        if not (self.quantize or self.palettize or self.prune or self.activations):
            raise ValueError("name at least one of quantize, palettize, prune or activations")
        if self.palettize is not None and self.palettize.calibrated and self.palettize.mode != "kmeans":
            raise ValueError("palettize.calibrated weights the k-means: it takes mode kmeans")
        if self.palettize is not None and self.quantize is not None and self.quantize.granularity != "per_tensor":
            raise ValueError("quantizing a palette takes quantize.granularity per_tensor (coremltools quantizes "
                             f"the table, whose axes are not the weight's), got {self.quantize.granularity}")
        return self

    @property
    def kind(self) -> str:
        """A short name of what the section does, e.g. 'int8', '6-bit palette', '50% sparse + 4-bit palette'."""
        parts = []
        if self.prune is not None:
            parts.append(f"{self.prune.sparsity:.0%} sparse" if self.prune.sparsity is not None
                         else f"{self.prune.n_m[0]}:{self.prune.n_m[1]} sparse")
        if self.palettize is not None:
            parts.append(f"{self.palettize.nbits}-bit palette" + (" (calibrated)" if self.palettize.calibrated else ""))
        if self.quantize is not None:
            parts.append(self.quantize.dtype)
        if self.activations is not None:
            parts.append("int8 activations")
        return " + ".join(parts)

    def weight_steps(self) -> list[WeightStep]:
        """The weight steps that carry the section out, in order (later ones compress jointly)."""
        common = {"weight_threshold": self.min_weight_elements, "skip_ops": self.skip_ops,
                  "skip_op_types": self.skip_op_types}
        steps: list[WeightStep] = []
        if self.prune is not None:
            steps.append(Prune(**common, sparsity=self.prune.sparsity, n_m=self.prune.n_m))
        if self.palettize is not None:
            steps.append(Palettize(**common, **self.palettize.step_fields(), joint=bool(steps)))
        if self.quantize is not None:
            steps.append(LinearQuantize(**common, **self.quantize.model_dump(), joint=bool(steps)))
        return steps

    @property
    def calibrated(self) -> bool:
        """Whether the section measures the model on the validation samples (activations, calibrated palettes)."""
        return self.activations is not None or (self.palettize is not None and self.palettize.calibrated)

    def requirement(self) -> tuple[int, str]:
        """(oldest Core ML specification version that holds the result, the feature that needs it)."""
        needs = [step.requirement() for step in self.weight_steps()]
        if self.activations is not None:
            needs.append((IOS17, "activation quantization"))
        return max(needs)

    def neuralnetwork_problem(self) -> str | None:
        """Why a NeuralNetwork model cannot hold this compression (None when it can)."""
        if self.activations is not None:
            return "activation quantization needs an ML Program (iOS17)"
        steps = self.weight_steps()
        if len(steps) > 1:
            return "NeuralNetwork weights take one compression, not " + " and ".join(
                step.step.split("::")[1] for step in steps)
        return steps[0].neuralnetwork_problem() if steps else None


def compress(mlmodel: Any, compression: Compression, calibration: list[dict[str, Any]] | None = None) -> Any:
    """The compressed model; `calibration`: input sets for `predict` (needed for activations and
    calibrated palettes, which are measured on the uncompressed model)."""
    if compression.calibrated and not calibration:
        raise ValueError(f"{compression.kind} needs calibration inputs (the validation samples)")
    importance = None
    if compression.palettize is not None and compression.palettize.calibrated:
        from modelbuild.coreml.importance import weight_importance  # numpy and the runtime

        importance = weight_importance(mlmodel, calibration)
    if compression.activations is not None:
        from modelbuild.coreml.compression import quantize_activations  # numpy and coremltools

        mlmodel = quantize_activations(mlmodel, compression.activations.mode, calibration)
    steps = compression.weight_steps()
    if not steps:
        return mlmodel
    from modelbuild.coreml.compression import compressed_weights  # numpy and coremltools

    before = compressed_weights(mlmodel)
    for step in steps:
        mlmodel = step.apply(mlmodel, importance)
    if compressed_weights(mlmodel) <= before:
        raise ValueError(f"compression ({compression.kind}) changed no weight: every weight has at most "
                         f"min_weight_elements ({compression.min_weight_elements}) values or is left out by "
                         "skip_ops / skip_op_types; lower compression.min_weight_elements (e.g. 0) or drop the "
                         "weight compression (`modelbuild inspect` lists the weights and their sizes)")
    return mlmodel
