"""Core ML steps on weights: fp16, linear quantization, palettization.

NeuralNetwork fp16 uses coremltools' `quantize_weights(nbits=16)` (weights
stored as float16, computed in float32). ML Program steps go through
coremltools' own machinery (`coremltools.optimize.coreml`, MIL graph passes),
which loads the program into MIL, edits it and serialises it again.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import Field

from modelbuild.surgery import coreml_spec
from modelbuild.surgery.registry import COREML_STEPS, SurgeryError, SurgeryStep

_THRESHOLD = "Weights with fewer elements than this are left as they are (coremltools' default 2048)."


def _require_mlprogram(mlmodel: Any, step: str, alternative: str) -> None:
    spec = coreml_spec.spec_of(mlmodel)
    found = coreml_spec.model_format(spec)
    if found != "mlprogram":
        raise SurgeryError(
            f"{step} works on ML Program models (coremltools.optimize.coreml); this is a {found} model. "
            f"Convert with format 'mlprogram', or {alternative}."
        )


def _quietly(function: Any, *args: Any, **kwargs: Any) -> Any:
    from modelbuild.coreml.quiet import quiet_conversion

    with quiet_conversion():
        return function(*args, **kwargs)


@COREML_STEPS.register
class Fp16Weights(SurgeryStep):
    """Store weights as float16 (half the file size); model inputs and outputs stay float32.

    Given: NeuralNetwork: convolution { weights { floatValue: [...] } }
           ML Program:    w = const(fp32); y = conv(x, w)
    Result: NeuralNetwork: convolution { weights { float16Value: ... } }   (computed in float32)
            ML Program:    x16 = cast(x, fp16); y16 = conv(x16, w16 = const(fp16)); y = cast(y16, fp32)
            (the program computes in float16, as a float16 conversion would)
    """

    step: Literal["coreml::fp16_weights"] = "coreml::fp16_weights"

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        found = coreml_spec.model_format(spec)
        if found == "neuralnetwork":
            from coremltools.models.neural_network import quantization_utils

            return _quietly(quantization_utils.quantize_weights, mlmodel, nbits=16)
        if found == "mlprogram":
            from coremltools.converters.mil.mil.passes.defs.quantization import add_fp16_cast
            from coremltools.models.utils import _apply_graph_pass

            # classify holds its labels in a list const, which has no dtype to cast
            fp16 = add_fp16_cast(op_selector=lambda op: op.op_type != "classify")
            # keep the model's own specification version (coremltools' default would raise it to iOS16)
            return _quietly(_apply_graph_pass, mlmodel, fp16, spec_version=spec.specificationVersion)
        raise SurgeryError(f"{self.step} works on NeuralNetwork and ML Program models; this is a {found} model.")


@COREML_STEPS.register
class LinearQuantize(SurgeryStep):
    """Quantize ML Program weights linearly to 8 or 4 bits (coremltools.optimize.coreml).

    Given: w = const(fp32 [64, 32, 3, 3]); y = conv(x, w)
    Result: w = constexpr_affine_dequantize(int8 data, scale, zero_point)   (iOS18:
            constexpr_blockwise_shift_scale); y = conv(x, w)
    The compressed-weight ops need iOS16: the model's specification version becomes at least 7.
    """

    step: Literal["coreml::linear_quantize"] = "coreml::linear_quantize"
    mode: Literal["linear_symmetric", "linear"] = Field(
        "linear_symmetric", description="linear_symmetric: range [-max|w|, max|w|]; linear: [min w, max w].")
    dtype: Literal["int8", "uint8", "int4", "uint4"] = Field(
        "int8", description="Quantized type; 4-bit types need an iOS18 model.")
    granularity: Literal["per_tensor", "per_channel", "per_block"] = Field(
        "per_channel", description="One scale for the whole weight, per output channel, or per block.")
    block_size: int = Field(32, ge=1, description="Block size along the input axis (granularity per_block).")
    weight_threshold: int = Field(2048, ge=0, description=_THRESHOLD)

    def apply(self, mlmodel: Any) -> Any:
        _require_mlprogram(mlmodel, self.step, "use coreml::fp16_weights for NeuralNetwork models")
        from coremltools.optimize import coreml as cto

        op_config = cto.OpLinearQuantizerConfig(
            mode=self.mode, dtype=self.dtype, granularity=self.granularity,
            block_size=self.block_size if self.granularity == "per_block" else None,
            weight_threshold=self.weight_threshold,
        )
        config = cto.OptimizationConfig(global_config=op_config)
        return _quietly(cto.linear_quantize_weights, mlmodel, config)


@COREML_STEPS.register
class Palettize(SurgeryStep):
    """Palettize ML Program weights: each weight becomes an n-bit index into a lookup table.

    Given: w = const(fp32 [64, 32, 3, 3]); y = conv(x, w)
    Result: w = constexpr_lut_to_dense(indices uint<nbits>, lut fp32 [2^nbits]); y = conv(x, w)
    The compressed-weight ops need iOS16: the model's specification version becomes at least 7.
    """

    step: Literal["coreml::palettize"] = "coreml::palettize"
    nbits: Literal[1, 2, 3, 4, 6, 8] = Field(6, description="Bits per weight: a table of 2^nbits values.")
    mode: Literal["uniform", "kmeans"] = Field(
        "uniform", description="uniform: evenly spaced table values; kmeans: table from k-means clustering "
                               "of the weights (more accurate, needs scikit-learn).")
    granularity: Literal["per_tensor", "per_grouped_channel"] = Field(
        "per_tensor", description="One table per weight, or one per group of output channels (iOS18).")
    group_size: int = Field(16, ge=1, description="Output channels per table (granularity per_grouped_channel).")
    weight_threshold: int = Field(2048, ge=0, description=_THRESHOLD)

    def apply(self, mlmodel: Any) -> Any:
        _require_mlprogram(mlmodel, self.step, "use coreml::fp16_weights for NeuralNetwork models")
        from coremltools.optimize import coreml as cto

        if self.mode == "kmeans" and importlib.util.find_spec("sklearn") is None:
            raise SurgeryError(
                f"{self.step} with mode 'kmeans' needs scikit-learn, which is not installed: "
                "`pip install scikit-learn`, or use mode 'uniform'."
            )
        op_config = cto.OpPalettizerConfig(
            nbits=self.nbits, mode=self.mode, granularity=self.granularity,
            group_size=self.group_size if self.granularity == "per_grouped_channel" else 0,
            weight_threshold=self.weight_threshold,
        )
        config = cto.OptimizationConfig(global_config=op_config)
        return _quietly(cto.palettize_weights, mlmodel, config)
