"""Checks across recipe fields, after the schema accepted each field on its own.

Each check yields `(path, message)` pairs; the loader turns the path into the
line of the recipe file. Every problem is reported, not just the first.
"""
from __future__ import annotations

from typing import Iterator

from modelbuild.coreml.flexible import flexible_support_problem
from modelbuild.recipe.features import input_features, output_features_without_shapes
from modelbuild.recipe.schema import (FORMAT_SUFFIX, MLPROGRAM_TARGETS, NEURALNETWORK_TARGETS, PLAIN_FILE_NAME,
                                     CoreMLVariant, Recipe, is_plain_file_name)
from modelbuild.recipe.shapes import allows

Problem = tuple[tuple, str]
ARTIFACT_SUFFIXES = (".onnx", ".mlmodel", ".mlpackage")


def cross_field_problems(recipe: Recipe) -> list[Problem]:
    """Every problem that involves more than one field of the recipe."""
    return [*_model_source(recipe), *_patches(recipe), *_inputs(recipe), *_feature_names(recipe),
            *_variants(recipe), *_files(recipe), *_flexible(recipe), *_denoise(recipe),
            *_classifier(recipe), *_agreement(recipe), *_tolerances(recipe), *_allow_flat(recipe), *_capture(recipe),
            *_compression(recipe)]


def converted(recipe: Recipe) -> Iterator[tuple[str, CoreMLVariant]]:
    """The variants that are converted (not made from another variant's artifact): the ones whose
    conversion settings are checked; a from_variant variant shares them."""
    return ((name, spec) for name, spec in recipe.coreml.items() if spec.from_variant is None)


def _inputs(recipe: Recipe) -> Iterator[Problem]:
    for name, spec in recipe.inputs.items():
        low, high = spec.range
        if low >= high:
            yield ("inputs", name, "range"), f"expected [min, max] with min < max, got [{low}, {high}]"
        if spec.dtype in ("int32", "int64", "bool"):
            if spec.example is not None and spec.example != int(spec.example):
                yield ("inputs", name, "example"), f"a {spec.dtype} input takes a whole number, got {spec.example}"
            if spec.dtype == "bool" and spec.example not in (None, 0, 1):
                yield ("inputs", name, "example"), f"a bool input takes 0 or 1, got {spec.example}"
        if spec.dtype != "float16":
            continue
        for variant, coreml in converted(recipe):
            if coreml.format != "mlprogram" or coreml.minimum_deployment_target in ("iOS15", "macOS12"):
                yield ("coreml", variant), (f"input {name!r} is float16, which Core ML takes from iOS16/macOS13 in "
                                            f"an ML Program; use format mlprogram with such a target, or a float32 "
                                            f"input")


def _feature_names(recipe: Recipe) -> Iterator[Problem]:
    for name in sorted(set(recipe.inputs) & set(recipe.outputs)):
        yield ("outputs", name), f"{name!r} is also an input name; feature names must be unique"


def _variants(recipe: Recipe) -> Iterator[Problem]:
    for variant_name, variant in recipe.coreml.items():
        here = ("coreml", variant_name)
        converts = variant.from_variant is None  # else the settings are checked on the variant it is made from
        allowed = NEURALNETWORK_TARGETS if variant.format == "neuralnetwork" else MLPROGRAM_TARGETS
        if converts and variant.minimum_deployment_target not in allowed:
            yield here + ("minimum_deployment_target",), (
                f"{variant.format} cannot target {variant.minimum_deployment_target}; "
                f"expected one of {', '.join(allowed)}")
        if variant.file is not None:
            suffix = FORMAT_SUFFIX[variant.format]
            if not is_plain_file_name(variant.file, suffix):
                yield here + ("file",), (f"a {variant.format} artifact is {PLAIN_FILE_NAME.format(suffix=suffix)}, "
                                         f"got {variant.file!r}")
        if not converts:
            continue
        yield from _images(recipe, here, "image_inputs", variant.image_inputs, recipe.inputs)
        yield from _images(recipe, here, "image_outputs", variant.image_outputs, recipe.outputs)


def _images(recipe: Recipe, here: tuple, kind: str, table: dict, features: dict) -> Iterator[Problem]:
    for name, image in table.items():
        at = here + (kind, name)
        if name not in features:
            yield at, f"no {kind[6:-1]} named {name!r}; expected one of {', '.join(features)}"
            continue
        channels = 1 if image.color_layout == "GRAYSCALE" else 3
        if image.bias is not None and len(image.bias) != channels:
            yield at + ("bias",), (f"{image.color_layout} takes {channels} bias value(s), "
                                   f"got {len(image.bias)}")
        if getattr(image, "channel_scale", None) is not None and len(image.channel_scale) != channels:
            yield at + ("channel_scale",), (f"{image.color_layout} takes {channels} value(s), "
                                            f"got {len(image.channel_scale)}")
        if kind == "image_inputs":
            if recipe.inputs[name].dtype != "float32":
                yield at, f"an image input is float32, but inputs.{name}.dtype is {recipe.inputs[name].dtype}"
            shape = recipe.inputs[name].shape
            if len(shape) != 4 or shape[0] != 1 or shape[1] != channels:
                yield at, (f"an {image.color_layout} image needs shape [1, {channels}, H, W], "
                           f"but inputs.{name}.shape is {shape}")


def _files(recipe: Recipe) -> Iterator[Problem]:
    writers = {recipe.onnx_file: "onnx"}
    for variant_name in recipe.coreml:
        file = recipe.coreml_file(variant_name)
        if file in writers:
            yield ("coreml", variant_name, "file"), f"{file} is also written by {writers[file]}"
        writers.setdefault(file, f"coreml.{variant_name}")


def _model_source(recipe: Recipe) -> Iterator[Problem]:
    source = recipe.model
    if (source.factory is None) == (source.onnx is None):
        yield ("model",), "give exactly one of factory (a PyTorch model) or onnx (an existing ONNX file)"
    if source.onnx is None:
        return
    if not source.onnx.endswith(".onnx"):
        yield ("model", "onnx"), f"expected a path ending in .onnx, got {source.onnx!r}"
    for key in ("weights", "init", "normalize"):
        if getattr(source, key) is not None:
            yield ("model", key), "applies to a PyTorch factory, not to an ONNX source"
    if source.args:
        yield ("model", "args"), "applies to a PyTorch factory, not to an ONNX source"
    if source.patches:
        yield ("model", "patches"), "model patches edit a PyTorch model; an ONNX source has none (use onnx.surgery)"
    if "exporter" in recipe.onnx.model_fields_set:
        yield ("onnx", "exporter"), "applies to a PyTorch factory; an ONNX-source recipe's file is copied, not exported"
    for variant, spec in converted(recipe):
        if spec.frontend == "torch":
            yield ("coreml", variant, "frontend"), "an ONNX-source recipe has no PyTorch model: use frontend onnx"
    if recipe.agreement is not None:
        for name, reference in recipe.agreement.models.items():
            if reference == "torch":
                yield ("agreement", "models", name), "an ONNX-source recipe has no PyTorch model; use onnx"


def _patches(recipe: Recipe) -> Iterator[Problem]:
    for index, patch in enumerate(recipe.model.patches):
        for path, message in patch.recipe_problems(recipe):
            yield ("model", "patches", index, *path), message


def _flexible(recipe: Recipe) -> Iterator[Problem]:
    flexible_inputs, malformed = False, False
    for name, spec in recipe.inputs.items():
        flexible = spec.flexible
        if flexible is None:
            continue
        flexible_inputs = True
        here = ("inputs", name, "flexible")
        if (flexible.range is None) == (flexible.enumerated is None):
            malformed = True
            yield here, "give exactly one of range (per-dimension [min, max]) or enumerated (a list of shapes)"
            continue
        for d, bounds in (flexible.range or {}).items():
            if not 0 <= d < len(spec.shape) or len(bounds) != 2:
                yield here + ("range", d), (f"expected a dimension index below {len(spec.shape)} with [min, max], "
                                            f"got {d}: {bounds}")
            elif not (1 <= bounds[0] <= spec.shape[d] and (bounds[1] == -1 or spec.shape[d] <= bounds[1])):
                yield here + ("range", d), (f"[min, max] = {bounds} must hold the default size {spec.shape[d]} "
                                            f"(min >= 1; max -1 for unbounded)")
        for i, shape in enumerate(flexible.enumerated or []):
            if len(shape) != len(spec.shape) or any(size < 1 for size in shape):
                yield here + ("enumerated", i), f"expected {len(spec.shape)} sizes >= 1 like shape, got {shape}"
        for i, shape in enumerate(flexible.test_shapes):
            if not allows(spec, shape):
                yield here + ("test_shapes", i), f"{shape} is not among the declared shapes"
    if flexible_inputs and not malformed:
        yield from _flexible_routes(recipe)


def _flexible_routes(recipe: Recipe) -> Iterator[Problem]:
    """Variants whose frontend and format cannot take the flexible inputs: refused before any conversion."""
    for variant, spec in converted(recipe):
        if spec.fixed_shape:
            continue
        problem = flexible_support_problem(spec.frontend, spec.format, input_features(recipe, variant),
                                           output_features_without_shapes(recipe, variant),
                                           spec.minimum_deployment_target)
        if problem:
            yield ("coreml", variant), f"{problem} (or set fixed_shape: true on this variant)"


def _denoise(recipe: Recipe) -> Iterator[Problem]:
    denoise = recipe.validate_.denoise
    if denoise is None:
        return
    here = ("validate", "denoise")
    if denoise.image not in recipe.inputs:
        yield here + ("image",), f"no input named {denoise.image!r}; expected one of {', '.join(recipe.inputs)}"
    elif len(recipe.inputs[denoise.image].shape) != 4:
        yield here + ("image",), (f"the noisy image goes to an [N, C, H, W] input, but inputs.{denoise.image}.shape "
                                  f"is {recipe.inputs[denoise.image].shape}")
    if denoise.sigma_input is not None and denoise.sigma_input not in recipe.inputs:
        yield here + ("sigma_input",), (f"no input named {denoise.sigma_input!r}; expected one of "
                                        f"{', '.join(recipe.inputs)}")


def _classifier(recipe: Recipe) -> Iterator[Problem]:
    if recipe.classifier is not None:
        labels = recipe.classifier.labels
        if (labels.python is None) == (labels.file is None):
            yield ("classifier", "labels"), "give exactly one of python ('module:attr') or file (a labels file)"
        if len(recipe.outputs) != 1:
            yield ("classifier",), f"a classifier has one output (the logits); outputs lists {len(recipe.outputs)}"
        names = {recipe.classifier.predicted_feature_name, recipe.classifier.probabilities_output}
        for clash in sorted(names & set(recipe.inputs)):
            yield ("classifier",), f"output name {clash!r} is also an input name"
    for variant, spec in converted(recipe):
        if spec.classifier and recipe.classifier is None:
            yield ("coreml", variant, "classifier"), "needs a top-level classifier section with the labels"
        if recipe.is_classifier(variant) and spec.image_outputs:
            yield ("coreml", variant, "image_outputs"), "a classifier's outputs are a label and probabilities"
    normalize = recipe.model.normalize
    if normalize is not None:
        first = next(iter(recipe.inputs.values()))
        channels = first.shape[1] if len(first.shape) > 1 else 0
        if not (len(normalize.mean) == len(normalize.std) == channels):
            yield ("model", "normalize"), (f"mean and std need one value per channel of the first input "
                                           f"({channels}); got {len(normalize.mean)} and {len(normalize.std)}")
        if any(v <= 0 for v in normalize.std):
            yield ("model", "normalize", "std"), f"every std must be > 0, got {normalize.std}"


def _agreement(recipe: Recipe) -> Iterator[Problem]:
    if recipe.agreement is None:
        return
    for name, reference in recipe.agreement.models.items():
        if ":" in reference or "/" in reference or reference.endswith(ARTIFACT_SUFFIXES):
            continue  # another recipe's model or a file: checked when the task runs
        if reference not in ("torch", "onnx", *recipe.coreml):
            yield ("agreement", "models", name), (
                f"unknown model {reference!r}; expected torch, onnx, one of the variants "
                f"({', '.join(recipe.coreml) or 'none'}), '<recipe>:<model>' or a .onnx/.mlmodel/.mlpackage path")
    if not (recipe.agreement.samples or recipe.validate_.samples):
        yield ("agreement", "samples"), "needs sample images (here or in validate.samples)"


def _allow_flat(recipe: Recipe) -> Iterator[Problem]:
    for i, name in enumerate(recipe.validate_.allow_flat):
        if name not in recipe.outputs:
            yield ("validate", "allow_flat", i), f"no output named {name!r}; expected one of {', '.join(recipe.outputs)}"


def _tolerances(recipe: Recipe) -> Iterator[Problem]:
    for artifact in recipe.validate_.tolerances:
        if artifact != "onnx" and artifact not in recipe.coreml:
            yield ("validate", "tolerances", artifact), (
                f"unknown artifact {artifact!r}; expected 'onnx' or one of "
                f"{', '.join(recipe.coreml) or '(no Core ML variants)'}")


def _capture(recipe: Recipe) -> Iterator[Problem]:
    """`capture` chooses how frontend torch captures the model; frontend onnx converts the ONNX file."""
    for variant, spec in converted(recipe):
        if spec.frontend == "onnx" and "capture" in spec.model_fields_set:
            yield ("coreml", variant, "capture"), ("applies to frontend torch only; frontend onnx converts the "
                                                   "ONNX file (choose how it is exported with onnx.exporter)")


# The Core ML specification version each deployment target starts (Model.proto's table).
SPECIFICATION_VERSIONS = {"iOS13": 4, "iOS14": 5, "iOS15": 6, "iOS16": 7, "iOS17": 8, "iOS18": 9,
                          "macOS10_15": 4, "macOS11": 5, "macOS12": 6, "macOS13": 7, "macOS14": 8, "macOS15": 9}
TARGET_NAMES = {7: "iOS16 (macOS13)", 8: "iOS17 (macOS14)", 9: "iOS18 (macOS15)"}
RAISED_BY_COREMLTOOLS = 7  # compressed weights raise an older ML Program to iOS16 by themselves


def _compression(recipe: Recipe) -> Iterator[Problem]:
    """What the variant's format and target cannot hold, refused before any conversion runs."""
    for variant, spec in recipe.coreml.items():
        if spec.compression is None:
            continue
        here = ("coreml", variant, "compression")
        owner = f"coreml.{spec.from_variant or variant}"
        if spec.format == "neuralnetwork":
            problem = spec.compression.neuralnetwork_problem()
            if problem:
                yield here, f"{problem}; {owner} converts to a NeuralNetwork: use format mlprogram there"
            continue
        if spec.compression.activations is not None and spec.compute_precision != "float16":
            yield here + ("activations",), (f"coremltools quantizes the activations of a float16 ML Program only, "
                                            f"and {owner} converts in float32: set {owner}.compute_precision "
                                            f"float16")
        needed, feature = spec.compression.requirement()
        target = spec.minimum_deployment_target
        if needed > RAISED_BY_COREMLTOOLS and SPECIFICATION_VERSIONS[target] < needed:
            yield here, (f"{feature} needs an ML Program for {TARGET_NAMES[needed]} or later, and {owner} "
                         f"converts for {target}: set {owner}.minimum_deployment_target accordingly")
