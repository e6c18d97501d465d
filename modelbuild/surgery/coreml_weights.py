"""Core ML steps on weights: fp16, linear quantization, palettization, magnitude pruning.

ML Program steps go through coremltools' own machinery (`coremltools.optimize.coreml`,
MIL graph passes), which loads the program into MIL, edits it and serialises it again.
NeuralNetwork models go through coremltools' quantization utilities: fp16 storage,
per-channel linear quantization and lookup tables; what they cannot store (pruned
weights, per-tensor or per-block scales, grouped palettes, joint forms) is refused with
the reason. Palettes are k-means palettes from `modelbuild.coreml.kmeans` (fast and
reproducible) or evenly spaced.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelbuild.coreml.quiet import quiet_conversion
from modelbuild.coreml.weight_selection import layer_selector, optimization_config
from modelbuild.surgery import coreml_spec
from modelbuild.surgery.registry import COREML_STEPS, SurgeryError, SurgeryStep

_THRESHOLD = "Weights with this many elements or fewer are left as they are (coremltools' default 2048)."
_SKIP_OPS = ("Ops whose weights stay as they are: globs on ML Program op names (a weight's const or the op "
             "that reads it, e.g. 'conv_0*'; `modelbuild inspect` lists them) or NeuralNetwork layer names.")
_SKIP_TYPES = ("Op types whose weights stay as they are: ML Program op types (conv, linear, matmul, ...) or "
               "NeuralNetwork layer types (convolution, innerProduct, ...).")
_JOINT = ("Compress weights that an earlier step compressed (iOS18): palettize or quantize the values of pruned "
          "weights, or quantize a palette.")
IOS16, IOS17, IOS18 = 7, 8, 9  # Core ML specification versions


def _quietly(function: Any, *args: Any, **kwargs: Any) -> Any:
    with quiet_conversion():
        return function(*args, **kwargs)


def _format(mlmodel: Any) -> str:
    return coreml_spec.model_format(coreml_spec.spec_of(mlmodel))


class WeightStep(SurgeryStep):
    """What every compression step shares: which weights it leaves alone, and the forms it needs."""

    weight_threshold: int = Field(2048, ge=0, description=_THRESHOLD)
    skip_ops: list[str] = Field(default_factory=list, description=_SKIP_OPS)
    skip_op_types: list[str] = Field(default_factory=list, description=_SKIP_TYPES)

    def requirement(self) -> tuple[int, str]:
        """(the oldest Core ML specification version that stores the result, the feature that needs it)."""
        return IOS16, "compressed weights (constexpr ops)"

    def neuralnetwork_problem(self) -> str | None:
        """Why a NeuralNetwork model cannot hold this compression (None when it can)."""
        return None

    def apply(self, mlmodel: Any, importance: Any = None) -> Any:
        """The compressed model; `importance` (modelbuild.coreml.importance): weights palettes' k-means."""
        found = _format(mlmodel)
        if found == "mlprogram":
            return self.apply_mlprogram(mlmodel, importance)
        if found != "neuralnetwork":
            raise SurgeryError(f"{self.step} works on ML Program and NeuralNetwork models; this is a {found} model.")
        problem = self.neuralnetwork_problem()
        if problem:
            raise SurgeryError(f"{self.step}: {problem}; convert with format 'mlprogram' for that.")

        selector = layer_selector(mlmodel.get_spec(), self.skip_ops, self.skip_op_types, self.weight_threshold,
                                  self.step)
        return self.apply_neuralnetwork(mlmodel, selector, importance)

    def apply_mlprogram(self, mlmodel: Any, importance: Any) -> Any:  # pragma: no cover - every step overrides it
        raise NotImplementedError

    def apply_neuralnetwork(self, mlmodel: Any, selector: Any, importance: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _config(self, mlmodel: Any, op_config: Any) -> Any:
        return optimization_config(mlmodel, op_config, self.skip_ops, self.skip_op_types, self.step)


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
class LinearQuantize(WeightStep):
    """Quantize weights linearly to 8 or 4 bits: w = scale * (q - zero_point).

    Given: w = const(fp32 [64, 32, 3, 3]); y = conv(x, w)
    Result: w = constexpr_affine_dequantize(int8 data, scale, zero_point)   (iOS18:
            constexpr_blockwise_shift_scale); y = conv(x, w)
    ML Program: the compressed-weight ops need iOS16 (the specification version becomes at least 7);
    4-bit types and per-block scales need an iOS18 model. NeuralNetwork: per-channel only, levels
    stored with a scale and bias per output channel (linear_symmetric: 8 bits only).
    """

    step: Literal["coreml::linear_quantize"] = "coreml::linear_quantize"
    mode: Literal["linear_symmetric", "linear"] = Field(
        "linear_symmetric", description="linear_symmetric: range [-max|w|, max|w|]; linear: [min w, max w].")
    dtype: Literal["int8", "uint8", "int4", "uint4"] = Field(
        "int8", description="Quantized type; 4-bit types need an iOS18 model.")
    granularity: Literal["per_tensor", "per_channel", "per_block"] = Field(
        "per_channel", description="One scale for the whole weight, per output channel, or per block.")
    block_size: int = Field(32, ge=1, description="Block size along the input axis (granularity per_block).")
    joint: bool = Field(False, description=_JOINT)

    def requirement(self) -> tuple[int, str]:
        if self.dtype in ("int4", "uint4"):
            return IOS18, f"{self.dtype} weights"
        if self.granularity == "per_block":
            return IOS18, "per-block quantization"
        if self.joint:
            return IOS18, "joint compression"
        return super().requirement()

    def neuralnetwork_problem(self) -> str | None:
        if self.granularity != "per_channel":
            return f"NeuralNetwork weights are quantized per output channel only, not {self.granularity}"
        if self.joint:
            return "NeuralNetwork weights have no joint compressed forms"
        if self.mode == "linear_symmetric" and self.dtype.endswith("4"):
            return "NeuralNetwork symmetric quantization is 8-bit only (use mode linear for 4 bits)"
        return None

    def apply_mlprogram(self, mlmodel: Any, importance: Any = None) -> Any:
        from coremltools.optimize import coreml as cto

        op_config = cto.OpLinearQuantizerConfig(
            mode=self.mode, dtype=self.dtype, granularity=self.granularity,
            block_size=self.block_size if self.granularity == "per_block" else 32,
            weight_threshold=self.weight_threshold,
        )
        return _quietly(cto.linear_quantize_weights, mlmodel, self._config(mlmodel, op_config),
                        joint_compression=self.joint)

    def apply_neuralnetwork(self, mlmodel: Any, selector: Any, importance: Any = None) -> Any:
        from coremltools.models.neural_network import quantization_utils

        nbits = 4 if self.dtype.endswith("4") else 8
        return _quietly(quantization_utils.quantize_weights, mlmodel, nbits, self.mode, selector=selector)


@COREML_STEPS.register
class Palettize(WeightStep):
    """Palettize weights: each weight becomes an n-bit index into a table of 2^n values.

    Given: w = const(fp32 [64, 32, 3, 3]); y = conv(x, w)
    Result: w = constexpr_lut_to_dense(indices uint<nbits>, lut fp32 [2^nbits]); y = conv(x, w)
    ML Program: the compressed-weight ops need iOS16 (the specification version becomes at least 7);
    3-bit tables, grouped-channel tables and per-channel scales need an iOS18 model.
    NeuralNetwork: one table per layer weight (a lookupTableQuantization).
    """

    step: Literal["coreml::palettize"] = "coreml::palettize"
    nbits: Literal[1, 2, 3, 4, 6, 8] = Field(6, description="Bits per weight: a table of 2^nbits values.")
    mode: Literal["kmeans", "uniform"] = Field(
        "kmeans", description="kmeans: the table that minimises the squared error (Lloyd's k-means on the sorted "
                              "values, seeded); uniform: evenly spaced values from min to max.")
    granularity: Literal["per_tensor", "per_grouped_channel"] = Field(
        "per_tensor", description="One table per weight, or one per group of output channels (iOS18).")
    group_size: int = Field(16, ge=1, description="Output channels per table (granularity per_grouped_channel).")
    per_channel_scale: bool = Field(False, description="Divide each output channel by its largest magnitude "
                                                       "before palettizing, and store the scales (iOS18).")
    joint: bool = Field(False, description=_JOINT)

    def requirement(self) -> tuple[int, str]:
        if self.granularity == "per_grouped_channel":
            return IOS18, "grouped-channel palettization"
        if self.per_channel_scale:
            return IOS18, "per-channel scales of a palette"
        if self.nbits == 3:
            return IOS18, "3-bit palettes"
        if self.joint:
            return IOS18, "joint compression"
        return super().requirement()

    def neuralnetwork_problem(self) -> str | None:
        if self.granularity != "per_tensor":
            return "NeuralNetwork weights have one table per weight, not per group of channels"
        if self.per_channel_scale or self.joint:
            return "NeuralNetwork lookup tables have no per-channel scales or joint forms"
        return None

    def apply_mlprogram(self, mlmodel: Any, importance: Any = None) -> Any:
        from coremltools.optimize import coreml as cto

        from modelbuild.coreml.kmeans import coremltools_lut_function  # numpy: recipes import these steps

        lut = coremltools_lut_function(self.nbits, importance)
        table = ({"mode": "custom", "lut_function": lut} if self.mode == "kmeans"
                 else {"mode": "uniform", "nbits": self.nbits})
        op_config = cto.OpPalettizerConfig(
            **table, granularity=self.granularity,
            group_size=self.group_size if self.granularity == "per_grouped_channel" else 32,
            enable_per_channel_scale=self.per_channel_scale, weight_threshold=self.weight_threshold,
        )
        return _quietly(cto.palettize_weights, mlmodel, self._config(mlmodel, op_config),
                        joint_compression=self.joint)

    def apply_neuralnetwork(self, mlmodel: Any, selector: Any, importance: Any = None) -> Any:
        from coremltools.models.neural_network import quantization_utils

        from modelbuild.coreml.kmeans import neural_network_lut_function  # numpy, as above

        if self.mode == "kmeans":
            return _quietly(quantization_utils.quantize_weights, mlmodel, self.nbits, "custom_lut",
                            selector=selector, lut_function=neural_network_lut_function(importance))
        return _quietly(quantization_utils.quantize_weights, mlmodel, self.nbits, "linear_lut", selector=selector)


def check_prune_target(sparsity: float | None, n_m: list[int] | None) -> None:
    """Pruning takes exactly one target, a sparsity or a valid [n, m] (ValueError otherwise)."""
    if (sparsity is None) == (n_m is None):
        raise ValueError("give exactly one of sparsity (e.g. 0.5) or n_m (e.g. [2, 4])")
    if n_m is not None and not 0 < n_m[0] <= n_m[1]:
        raise ValueError(f"n_m is [n, m] with 0 < n <= m, got {n_m}")


@COREML_STEPS.register
class Prune(WeightStep):
    """Prune ML Program weights by magnitude: the smallest become zero and are stored sparse.

    Given: w = const(fp32 [64, 32, 3, 3]); y = conv(x, w)
    Result: w = constexpr_sparse_to_dense(nonzero_data fp32, mask uint1); y = conv(x, w)
    with sparsity 0.5 (half the values, the smallest in magnitude) or n_m [2, 4] (2 of every 4
    along the input axis). The compressed-weight ops need iOS16; NeuralNetwork models have no
    sparse weights.
    """

    step: Literal["coreml::prune"] = "coreml::prune"
    sparsity: float | None = Field(None, gt=0, lt=1, description="Fraction of each weight's values set to zero, "
                                                                 "the smallest in magnitude.")
    n_m: list[int] | None = Field(None, min_length=2, max_length=2, description="[n, m]: n of every m "
                                                                                "consecutive values set to zero.")

    @model_validator(mode="after")
    def _one_target(self) -> "Prune":
        check_prune_target(self.sparsity, self.n_m)
        return self

    def neuralnetwork_problem(self) -> str | None:
        return "NeuralNetwork models have no sparse weights"

    def apply_mlprogram(self, mlmodel: Any, importance: Any = None) -> Any:
        from coremltools.optimize import coreml as cto

        op_config = cto.OpMagnitudePrunerConfig(
            target_sparsity=self.sparsity, n_m_ratio=None if self.n_m is None else tuple(self.n_m),
            weight_threshold=self.weight_threshold)
        return _quietly(cto.prune_weights, mlmodel, self._config(mlmodel, op_config))
