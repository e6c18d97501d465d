"""The recipe schema: pydantic models, strict, every field documented.

A recipe says which PyTorch model to build (factory, arguments, weights), what
its inputs and outputs are called and look like, how to export it to ONNX and
which Core ML variants to make from it. Unknown keys are errors everywhere.
Relative paths are relative to the project root: the folder that holds
`recipes/` (or the recipe's own folder when it does not live in `recipes/`).
"""
from __future__ import annotations

import math
import os
import re
import sys
from typing import Any, Literal

from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelbuild.patches.registry import TORCH_PATCHES, ModelPatch
from modelbuild.recipe.compression import Compression
from modelbuild.references import REFERENCE_PATTERN
from modelbuild.surgery.registry import COREML_STEPS, ONNX_STEPS, RegisteredStep, SurgeryStep

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
RECIPE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
OUTPUT_PATH_PATTERN = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
INPUT_DTYPES = ("float32", "float16", "int32", "int64", "bool")

MAX_DIMENSION = 2**31 - 1  # Core ML shapes are int32
DEFAULT_MAX_INPUT_ELEMENTS = 2**27  # 512 MB of float32
MAX_ELEMENTS_VARIABLE = "MODELBUILD_MAX_INPUT_ELEMENTS"
FILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}")


def max_input_elements() -> int:
    """The ceiling on an input's element count: MODELBUILD_MAX_INPUT_ELEMENTS, or 2**27."""
    value = os.environ.get(MAX_ELEMENTS_VARIABLE, "")
    return int(value) if value.isdigit() else DEFAULT_MAX_INPUT_ELEMENTS


PLAIN_FILE_NAME = "a plain file name ending in {suffix} (letters, digits, _ . + -; no folder)"


def is_plain_file_name(value: str, suffix: str) -> bool:
    """Whether `value` is a file name of letters, digits, _ . + - (no folder) ending in `suffix`."""
    return bool(FILE_NAME_PATTERN.fullmatch(value)) and value.endswith(suffix) and value != suffix


def check_reference(value: str | None, expected: str) -> str | None:
    """'module:attr' exactly, from a module that is not part of Python's standard library."""
    if value is None:
        return value
    if not REFERENCE_PATTERN.fullmatch(value):
        raise ValueError(f"expected {expected}, got {value!r}")
    if value.split(".")[0].split(":")[0] in sys.stdlib_module_names:
        raise ValueError(f"{value!r} is in Python's standard library, which builds no models; expected {expected}")
    return value


DEPLOYMENT_TARGETS = (
    "iOS13", "iOS14", "iOS15", "iOS16", "iOS17", "iOS18",
    "macOS10_15", "macOS11", "macOS12", "macOS13", "macOS14", "macOS15",
)
# Targets a NeuralNetwork (.mlmodel) can be built for: the torch frontend refuses iOS15+/macOS12+.
NEURALNETWORK_TARGETS = ("iOS13", "iOS14", "macOS10_15", "macOS11")
MLPROGRAM_TARGETS = tuple(t for t in DEPLOYMENT_TARGETS if t not in NEURALNETWORK_TARGETS)
FORMAT_SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}

# One surgery step: a mapping whose `step` id picks the parameter model (see modelbuild.surgery).
OnnxStep = Annotated[SurgeryStep, RegisteredStep(ONNX_STEPS)]
CoreMLStep = Annotated[SurgeryStep, RegisteredStep(COREML_STEPS)]
# One model patch, the same way (see modelbuild.patches).
TorchPatch = Annotated[ModelPatch, RegisteredStep(TORCH_PATCHES)]


class Strict(BaseModel):
    """Base model: unknown keys are rejected, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Weights(Strict):
    """A state dict to load into the model after construction."""

    path: str = Field(description="The weights file (a torch state dict), relative to the project root.")
    key: str | None = Field(None, description="Take the state dict from this key of the loaded object "
                                              "(for checkpoints like {'state_dict': ...}).")
    strip_prefix: str = Field("", description="Remove this prefix from every key that has it "
                                              "(e.g. 'module.' left by DataParallel).")
    rename: dict[str, str] = Field(default_factory=dict,
                                   description="Replace key prefixes: {old_prefix: new_prefix}, applied after strip_prefix.")
    strict: bool = Field(True, description="Fail on missing or unexpected keys (listed in the error).")


class Normalize(Strict):
    """Per-channel normalisation put in front of the model: forward((x - mean[c]) / std[c]).

    Core ML images have one scale for all channels, so exact ImageNet-style normalisation
    belongs in the graph: the built model then takes inputs in [0, 1]."""

    mean: list[float] = Field(min_length=1, description="Per-channel mean, e.g. [0.485, 0.456, 0.406].")
    std: list[float] = Field(min_length=1, description="Per-channel standard deviation, e.g. [0.229, 0.224, 0.225].")


class ModelSource(Strict):
    """How to construct the PyTorch model."""

    factory: str | None = Field(None, description="'package.module:attr', a class or function returning an "
                                                  "nn.Module. Give this or onnx.")
    onnx: str | None = Field(None, description="An existing ONNX file to start from instead of a PyTorch model "
                                               "(relative to the project root): no torch stage, and onnxruntime "
                                               "on this file is the validation reference.")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the factory.")
    weights: Weights | None = Field(None, description="Optional weights; without them the model keeps its "
                                                      "seeded initialisation and the build warns.")
    init: str | None = Field(None, description="A method to call after construction, before loading weights "
                                               "(e.g. 'init_weights').")
    seed: int = Field(0, description="torch.manual_seed before construction, for reproducible initialisation.")
    normalize: Normalize | None = Field(None, description="Optional per-channel normalisation of the first input, "
                                                          "built into the graph.")
    patches: list[TorchPatch] = Field(default_factory=list, description="Model patches applied in order after the "
                                                                        "weights are loaded, before normalize wraps "
                                                                        "the model (see the model patch reference).")

    @field_validator("factory")
    @classmethod
    def _factory_syntax(cls, value: str | None) -> str | None:
        return check_reference(value, "'package.module:attr' (e.g. 'modelbuild.zoo.ffdnet:FFDNet')")

    @field_validator("init")
    @classmethod
    def _init_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(f"expected a method name such as 'init_weights', got {value!r}")
        return value


class Flexible(Strict):
    """Other shapes the input accepts besides `shape` (the default, used for export and tracing):
    exactly one of `range` or `enumerated`."""

    range: dict[int, list[int]] | None = Field(None, description="Dimension index -> [min, max] (max -1: "
                                                                "unbounded), e.g. {2: [64, 2048], 3: [64, 2048]}.")
    enumerated: list[list[int]] | None = Field(None, description="Every allowed shape (the default shape among them).")
    test_shapes: list[list[int]] = Field(default_factory=list, description="Extra shapes to validate at (besides the "
                                                                            "minimum, default, maximum and one other).")


class Input(Strict):
    """A model input: a tensor of a dtype and a default shape (and optionally other, flexible shapes)."""

    shape: list[int] = Field(description="Example shape, e.g. [1, 3, 512, 512]; every dimension >= 1.")
    dtype: Literal[INPUT_DTYPES] = Field(  # type: ignore[valid-type]
        "float32", description="Element type. ONNX keeps it; Core ML gets what it supports: int32 for the "
                               "integer and bool types (float32 in a NeuralNetwork), float16 from iOS16 "
                               "(ML Program).")
    range: list[float] = Field([0.0, 1.0], min_length=2, max_length=2, description="Value range of the data (min, max); random "
                                                               "examples are drawn uniformly from it (integers: "
                                                               "from min to max inclusive, e.g. [0, 30521] for "
                                                               "token ids of a 30522-word vocabulary).")
    example: float | None = Field(None, description="Use this constant as the example value (e.g. a noise level, "
                                                    "or 1 for an attention mask).")
    description: str = Field("", description="Shown in the Core ML model's feature description.")
    flexible: Flexible | None = Field(None, description="Let the Core ML models (and the ONNX file) accept other "
                                                        "shapes.")

    @field_validator("shape")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or len(value) > 5 or any(d < 1 or d > MAX_DIMENSION for d in value):
            raise ValueError(f"expected 1 to 5 dimensions, each from 1 to {MAX_DIMENSION} (Core ML's limit), "
                             f"got {value}")
        elements = math.prod(value)
        ceiling = max_input_elements()
        if elements > ceiling:
            raise ValueError(f"{value} has {elements:,} elements, more than {ceiling:,}: every build stage holds "
                             f"such an input (and the model's activations) in memory; use a smaller example shape "
                             f"(flexible shapes can allow larger ones) or raise {MAX_ELEMENTS_VARIABLE}")
        return value



class Output(Strict):
    """A model output, picked from what forward() returns (a tensor, tuple, list, dict, namedtuple or
    dataclass such as transformers' ModelOutput)."""

    path: str | None = Field(None, description="Where the tensor is in the returned structure: keys and "
                                               "indices joined by dots ('out', 'logits', '0', 'aux.1'). "
                                               "Default: the output's own name when forward() returns a "
                                               "mapping or dataclass, else its position among the outputs.")
    description: str = Field("", description="Shown in the Core ML model's feature description.")

    @field_validator("path")
    @classmethod
    def _path_syntax(cls, value: str | None) -> str | None:
        if value is not None and not OUTPUT_PATH_PATTERN.match(value):
            raise ValueError(f"expected keys or indices joined by dots, like 'out', '0' or 'aux.1', got {value!r}")
        return value


class OnnxStage(Strict):
    """The ONNX export."""

    opset: int = Field(17, ge=9, le=21, description="ONNX opset version (9 to 21).")
    exporter: Literal["torchscript", "dynamo"] = Field(
        "torchscript", description="'torchscript': torch.onnx.export(dynamo=False), the deprecated TorchScript "
                                   "exporter; 'dynamo': torch.onnx.export(dynamo=True), which captures with "
                                   "torch.export and writes opset 18 (older opsets are converted down after "
                                   "optimisation).")
    file: str | None = Field(None, description="File name in artifacts/<recipe>/; default '<recipe>.onnx'.")
    max_error_of_range: float = Field(1e-4, gt=0, description="Largest |onnxruntime - reference| on the example "
                                                              "inputs, as a fraction of each output's value range.")
    max_abs_error: float | None = Field(None, gt=0, description="Also limit |onnxruntime - reference| in output "
                                                                "units (absolute; none by default).")
    surgery: list[OnnxStep] = Field(default_factory=list, description="ONNX surgery steps applied in order after "
                                                                      "the export (see the surgery reference).")

    @field_validator("file")
    @classmethod
    def _suffix(cls, value: str | None) -> str | None:
        if value is not None and not is_plain_file_name(value, ".onnx"):
            raise ValueError(f"expected {PLAIN_FILE_NAME.format(suffix='.onnx')}, got {value!r}")
        return value


class ImageInput(Strict):
    """Make an input an image: Core ML computes scale * pixel + bias per channel."""

    scale: float = Field(1.0, description="Multiplies every pixel value (0..255), e.g. 1/255 = 0.00392156862745098.")
    bias: list[float] | None = Field(None, description="Added after scaling, in the tensor's channel "
                                                       "order: [R, G, B], [B, G, R] for BGR, [gray]; default zeros.")
    color_layout: Literal["RGB", "BGR", "GRAYSCALE"] = Field("RGB", description="Channel order the model expects.")
    channel_scale: list[float] | None = Field(None, description="Per-channel factors applied after scale and bias, "
                                                                "as a multiplication in the graph: exact mean/std "
                                                                "normalisation, e.g. 1/std (tensor channel order).")


class ImageOutput(Strict):
    """Make an output an image: the graph computes scale * value + bias, then Core ML makes pixels of it."""

    scale: float = Field(1.0, description="Multiplies the model's output, e.g. 255 for a model that outputs [0, 1].")
    bias: list[float] | None = Field(None, description="Added after scaling, per channel; default zeros.")
    color_layout: Literal["RGB", "BGR", "GRAYSCALE"] = Field("RGB", description="Channel order of the output.")


class CoreMLVariant(Strict):
    """One Core ML artifact: a conversion (frontend and format), or the compression of another variant's
    artifact (from_variant), which then converts nothing itself."""

    frontend: Literal["onnx", "torch"] | None = Field(None, description="'onnx': convert the ONNX file with "
                                                                        "onnx2coreml; 'torch': convert the traced "
                                                                        "model with coremltools. Required unless "
                                                                        "from_variant is given.")
    capture: Literal["trace", "export"] = Field("trace", description="frontend torch: how the model is captured "
                                                "for coremltools. 'trace': torch.jit.trace (deprecated TorchScript); "
                                                "'export': torch.export.export, then run_decompositions({}).")
    format: Literal["neuralnetwork", "mlprogram"] | None = Field(None, description="'neuralnetwork' (.mlmodel) or "
                                                                                   "'mlprogram' (.mlpackage). "
                                                                                   "Required unless from_variant "
                                                                                   "is given.")
    minimum_deployment_target: Literal[DEPLOYMENT_TARGETS] = Field(  # type: ignore[valid-type]
        None, description="Oldest OS the model runs on; default iOS13 for neuralnetwork, iOS15 for mlprogram.")
    compute_precision: Literal["float32", "float16"] = Field("float32", description="Precision of weights and "
                                                                                    "(for mlprogram) computation.")
    file: str | None = Field(None, description="File name in artifacts/<recipe>/; default '<recipe>_<variant>' "
                                               "plus .mlmodel or .mlpackage.")
    image_inputs: dict[str, ImageInput] = Field(default_factory=dict, description="Inputs to turn into images.")
    image_outputs: dict[str, ImageOutput] = Field(default_factory=dict, description="Outputs to turn into images.")
    classifier: bool | None = Field(None, description="Give this variant classifier outputs (default: yes when the "
                                                      "recipe has a classifier section).")
    fixed_shape: bool = Field(False, description="Keep this variant at the default shapes even when inputs declare "
                                                 "flexible ones.")
    onnx_graph_check: bool = Field(True, description="With flexible inputs and frontend onnx, refuse an ONNX graph "
                                                     "whose layers fix the size. False: convert anyway, and let "
                                                     "validation at every declared shape judge (surgery may repair).")
    surgery: list[CoreMLStep] = Field(default_factory=list, description="Core ML surgery steps applied in order "
                                                                        "after conversion and compression (see the "
                                                                        "surgery reference).")
    from_variant: str | None = Field(None, description="Make this artifact from another variant's (its name) "
                                                       "instead of converting: the conversion runs once, and this "
                                                       "variant takes that one's frontend, format, target, "
                                                       "precision, images and classifier. Give only compression "
                                                       "(and file, surgery) with it.")
    compression: Compression | None = Field(None, description="Weight (and activation) compression applied after "
                                                              "conversion, or to the from_variant's artifact.")

    @model_validator(mode="before")
    @classmethod
    def _default_target(cls, data: Any) -> Any:
        if (isinstance(data, dict) and data.get("minimum_deployment_target") is None
                and data.get("from_variant") is None):
            data = dict(data)
            data["minimum_deployment_target"] = "iOS15" if data.get("format") == "mlprogram" else "iOS13"
        return data

    @model_validator(mode="after")
    def _conversion_or_source(self) -> "CoreMLVariant":
        if self.from_variant is None:
            missing = [key for key in ("frontend", "format") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"give {' and '.join(missing)} (how to convert), or from_variant (the variant "
                                 f"whose artifact this one compresses)")
            return self
        if not DERIVED_FIELDS.issuperset(self.model_fields_set):
            extra = sorted(self.model_fields_set - DERIVED_FIELDS)
            raise ValueError(f"a variant made from_variant {self.from_variant!r} takes its conversion settings "
                             f"from that variant; remove {', '.join(extra)} here (or set them there)")
        if self.compression is None and not self.surgery:
            raise ValueError("a variant made from another needs compression (or surgery) to differ from it")
        return self

    def derived_from(self, base: "CoreMLVariant") -> "CoreMLVariant":
        """This variant with the conversion settings of `base`, the variant whose artifact it compresses."""
        return base.model_copy(update={key: getattr(self, key) for key in DERIVED_FIELDS})


DERIVED_FIELDS = frozenset({"from_variant", "compression", "file", "surgery"})


class Labels(Strict):
    """Where the class labels come from: exactly one of `python` or `file`."""

    python: str | None = Field(None, description="'module:attr', a list of strings or a function returning one "
                                                 "(e.g. 'modelbuild.zoo.labels:imagenet_labels').")
    file: str | None = Field(None, description="A text file with one label per line, relative to the project root.")

    @field_validator("python")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        return check_reference(value, "'module:attr' (e.g. 'modelbuild.zoo.labels:imagenet_labels')")


class Classifier(Strict):
    """Core ML classifier outputs for a model whose single output is the logits [1, N]."""

    labels: Labels = Field(description="The N class labels, in logit order.")
    predicted_feature_name: str = Field("classLabel", pattern=NAME_PATTERN,
                                        description="Name of the predicted-label output.")
    probabilities_output: str = Field("classLabel_probs", pattern=NAME_PATTERN,
                                      description="Name of the label -> probability dictionary output.")
    add_softmax: bool = Field(True, description="Add a softmax (the model outputs logits).")


class Tolerance(Strict):
    """How close an artifact must stay to the PyTorch model. Figures are in output units, and in
    pixel levels (0..255) for image outputs. Without any, the defaults depend on the artifact:
    float32 max_abs_of_range 1e-4 (image outputs: max_abs 1 level; classifiers: also the same top-1
    class); float16 min_psnr 40 dB (classifiers: top-1 agreement reported, not required); a
    compressed variant is judged on its task, by how much it compresses (the report's "Compressed
    variants" table lists the defaults): e.g. int8 or an 8-bit palette min_psnr 30 dB, top-1 on
    every sample, denoising within 0.5 dB; a 6-bit palette min_psnr 25 dB, top-1 on 3 samples in 4,
    denoising within 0.5 dB."""

    max_abs: float | None = Field(None, gt=0, description="Largest absolute difference.")
    max_abs_of_range: float | None = Field(None, gt=0, description="Largest absolute difference as a fraction "
                                                                   "of the reference output's scale (the larger of "
                                                                   "its value range and its largest magnitude): "
                                                                   "the report's max rel.")
    min_psnr: float | None = Field(None, description="Smallest PSNR in dB against the reference (peak: the "
                                                     "reference's value range, 255 for images).")
    min_top1: float | None = Field(None, ge=0, le=1, description="Classifiers: the fraction of samples on which "
                                                                "the top-1 class must be PyTorch's (1: every "
                                                                "sample; 0 only reports it).")
    max_denoise_drop: float | None = Field(None, ge=0, description="validate.denoise: how many dB the denoised "
                                                                   "output's PSNR (mean over the samples) may "
                                                                   "fall below PyTorch's on the same inputs.")


class Denoise(Strict):
    """Denoising task metric: noisy = clean + N(0, sigma^2); report PSNR(noisy) -> PSNR(output)."""

    sigma: float = Field(gt=0, description="Noise standard deviation in pixel levels (0..255), e.g. 25.")
    image: str = Field(description="The input that receives the noisy image (values in [0, 1]).")
    sigma_input: str | None = Field(None, description="The input that receives sigma / 255, if the model has one.")
    seed: int = Field(0, description="Seed of the noise.")


class Validation(Strict):
    """What validation feeds the artifacts and how close they must stay to PyTorch."""

    samples: list[str] = Field(default_factory=list, description="Image files (relative to the project root) "
                                                                 "fed to the image-shaped inputs "
                                                                 "([1, 3, H, W] or [1, 1, H, W]).")
    random_samples: int = Field(1, ge=0, le=100, description="Seeded random input sets used when there are "
                                                             "no sample files.")
    denoise: Denoise | None = Field(None, description="Optional denoising metric on the samples.")
    tolerances: dict[str, Tolerance] = Field(default_factory=dict, description="Per artifact: 'onnx' or a "
                                                                               "Core ML variant name.")
    allow_flat: list[str] = Field(default_factory=list, description="Outputs whose reference may be flat (zero, "
                                                                    "below 1e-6, or the same for every input): "
                                                                    "otherwise that is a failure, since agreeing "
                                                                    "with it proves nothing.")


class Agreement(Strict):
    """An agreement matrix: the top-1 predictions of several models compared pairwise on the samples.

    Each model is 'torch' (this recipe's PyTorch model), 'onnx' (its ONNX artifact), a Core ML
    variant name, '<recipe>:<torch|onnx|variant>' for another recipe's, or a path to an .onnx,
    .mlmodel or .mlpackage file (fed the same inputs as this recipe's model)."""

    models: dict[str, str] = Field(min_length=2, description="Display name -> model reference (see above).")
    samples: list[str] = Field(default_factory=list, description="Image files; default: validate.samples.")


class Metadata(Strict):
    """Written into the Core ML models."""

    author: str = Field("", description="Core ML author field.")
    license: str = Field("", description="Core ML license field.")
    version: str = Field("", description="Core ML version string (quote numbers: \"1.0\").")


class Recipe(Strict):
    """A model to build: its source, its interface, and the artifacts to make of it."""

    name: str = Field(pattern=RECIPE_NAME_PATTERN, max_length=100, description="Recipe name: tasks are build:<name>, and "
                                                                "artifacts go to artifacts/<name>/.")
    description: str = Field("", description="One line about the model; Core ML short description.")
    metadata: Metadata = Field(default_factory=Metadata, description="Author, license and version.")
    model: ModelSource = Field(description="The PyTorch model: factory, arguments, weights.")
    inputs: dict[str, Input] = Field(min_length=1, description="Inputs in the order forward() takes them.")
    outputs: dict[str, Output] = Field(min_length=1, description="Outputs in the order forward() returns them.")
    classifier: Classifier | None = Field(None, description="Class labels and classifier output names for Core ML "
                                                            "variants (and top-1/top-5 agreement in validation).")
    onnx: OnnxStage = Field(default_factory=OnnxStage, description="The ONNX export: opset, file name, "
                                                                 "the onnxruntime check.")
    coreml: dict[str, CoreMLVariant] = Field(default_factory=dict, description="Core ML variants by name.")
    validate_: Validation = Field(default_factory=Validation, alias="validate",
                                  description="Validation samples and tolerances.")
    agreement: Agreement | None = Field(None, description="Optional top-1 agreement matrix across models "
                                                          "(task agreement:<name>).")

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False)

    @field_validator("inputs", "outputs", "coreml")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.fullmatch(NAME_PATTERN, str(key)):
                raise ValueError(f"name {key!r} must be an identifier (letters, digits, _; not starting with a digit)")
        return value

    @field_validator("coreml")
    @classmethod
    def _derived_variants(cls, value: dict[str, CoreMLVariant]) -> dict[str, CoreMLVariant]:
        """Give each from_variant variant the conversion settings of the variant it compresses."""
        converted = [name for name, spec in value.items() if spec.from_variant is None]
        resolved = {}
        for name, spec in value.items():
            base = spec.from_variant
            if base is not None and base not in converted:
                why = ("itself" if base == name else "another from_variant variant" if base in value
                       else "no variant")
                raise ValueError(f"{name}.from_variant names {why} ({base!r}); expected a variant that is "
                                 f"converted: {', '.join(converted) or '(none)'}")
            resolved[name] = spec if base is None else spec.derived_from(value[base])
        return resolved

    @property
    def onnx_file(self) -> str:
        """File name of the ONNX artifact."""
        return self.onnx.file or f"{self.name}.onnx"

    def is_classifier(self, variant: str) -> bool:
        """Whether a Core ML variant gets classifier outputs."""
        wanted = self.coreml[variant].classifier
        return self.classifier is not None and wanted is not False

    def variant_source(self, variant: str) -> str | None:
        """The variant whose artifact `variant` compresses (None when it is converted itself)."""
        return self.coreml[variant].from_variant

    def coreml_file(self, variant: str) -> str:
        """File name of a Core ML variant's artifact."""
        spec = self.coreml[variant]
        return spec.file or f"{self.name}_{variant}{FORMAT_SUFFIX[spec.format]}"

