"""Core ML stage: one recipe variant -> .mlmodel / .mlpackage through modelbuild.coreml."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelbuild.recipe import Recipe


def build_coreml(recipe: Recipe, root: Path, variant: str, onnx_path: Path, target: Path) -> dict[str, Any]:
    """Convert one variant (or load the artifact of the variant it is made from), compress it, apply its
    surgery, and save it atomically at `target`; return the manifest entry."""
    from modelbuild.coreml import save_mlmodel

    started = time.perf_counter()
    spec = recipe.coreml[variant]
    if spec.from_variant is not None:
        mlmodel = load_artifact(target.parent / recipe.coreml_file(spec.from_variant))
    else:
        mlmodel = _convert(recipe, root, variant, onnx_path)
    if spec.compression is not None:
        from modelbuild.coreml.compression import compress

        calibration = calibration_inputs(recipe, root, variant) if spec.compression.calibrated else None
        mlmodel = compress(mlmodel, spec.compression, calibration)
    if spec.surgery:
        from modelbuild.surgery import apply_steps

        mlmodel = apply_steps(mlmodel, spec.surgery)
    save_mlmodel(mlmodel, target)
    from modelbuild.sizes import artifact_sizes

    entry = {"frontend": spec.frontend, "format": spec.format,
             "minimum_deployment_target": spec.minimum_deployment_target,
             "compute_precision": spec.compute_precision,
             "specification_version": mlmodel.get_spec().specificationVersion, **artifact_sizes(target)}
    if spec.from_variant is not None:
        entry["from_variant"] = spec.from_variant
    if spec.compression is not None:
        entry["compression"] = spec.compression.kind
    return {**entry, "seconds": round(time.perf_counter() - started, 3)}


def _convert(recipe: Recipe, root: Path, variant: str, onnx_path: Path) -> Any:
    from modelbuild.coreml import convert

    spec = recipe.coreml[variant]
    torch_model = None
    if spec.frontend == "torch":
        from modelbuild.torch_model import build_model

        torch_model = build_model(recipe, root)
    return convert(
        frontend=spec.frontend,
        onnx_path=onnx_path if spec.frontend == "onnx" else None,
        torch_model=torch_model,
        inputs=input_features(recipe, variant),
        outputs=output_features(recipe, variant, onnx_path, torch_model),
        format=spec.format,
        minimum_deployment_target=spec.minimum_deployment_target,
        compute_precision=spec.compute_precision,
        metadata=metadata(recipe),
        classifier=classifier(recipe, root) if recipe.is_classifier(variant) else None,
        check_onnx_graph=spec.onnx_graph_check,
        capture=spec.capture,
    )


def load_artifact(path: Path) -> Any:
    """A built Core ML artifact as a coremltools MLModel (not compiled: Core ML is not needed)."""
    from modelbuild.quiet import coremltools

    if not path.exists():
        raise FileNotFoundError(f"{path.name} is not built")
    return coremltools().models.MLModel(str(path), skip_model_load=True)


def calibration_inputs(recipe: Recipe, root: Path, variant: str) -> list[dict[str, Any]]:
    """The validation samples at the default shapes, as a Core ML model of the variant takes them
    (image inputs as PIL images): what activation quantization is calibrated on."""
    from modelbuild.validation.runners import to_pil, values_to_pixels
    from modelbuild.validation.samples import make_samples

    images = recipe.coreml[variant].image_inputs
    return [{name: to_pil(values_to_pixels(value, images[name]), images[name]) if name in images else value
             for name, value in sample.feeds.items()}
            for sample in make_samples(recipe, root) if sample.shape_label == "default"]


def input_features(recipe: Recipe, variant: str) -> list:
    """The recipe's inputs as modelbuild.coreml FeatureSpecs (images where the variant says so)."""
    from modelbuild.coreml import FeatureSpec, ImageInput

    images = recipe.coreml[variant].image_inputs
    fixed = recipe.coreml[variant].fixed_shape
    features = []
    for name, spec in recipe.inputs.items():
        image = images.get(name)
        features.append(FeatureSpec(
            name=name, shape=tuple(spec.shape), description=spec.description,
            image=None if image is None else ImageInput(
                scale=image.scale, bias=_bias(image), color_layout=image.color_layout,
                channel_scale=None if image.channel_scale is None else tuple(image.channel_scale)),
            flexible=None if fixed else flexible(spec), dtype=spec.dtype))
    return features


def flexible(spec):
    """An input's flexible shapes as a modelbuild.coreml Range or Enumerated (None when it has none)."""
    from modelbuild.coreml.flexible import Enumerated, Range

    if spec.flexible is None:
        return None
    if spec.flexible.enumerated is not None:
        return Enumerated(shapes=tuple(tuple(s) for s in spec.flexible.enumerated), default=tuple(spec.shape))
    return Range(dim_ranges=tuple((low_high[0], low_high[1], size) if (low_high := spec.flexible.range.get(d))
                                  else None for d, size in enumerate(spec.shape)))


def output_features_without_shapes(recipe: Recipe, variant: str) -> list:
    """The outputs' names and image declarations (what the route checks look at), shapes left empty."""
    return output_features(recipe, variant, shapes={name: () for name in recipe.outputs})


def output_features(recipe: Recipe, variant: str, onnx_path: Path | None = None, torch_model=None,
                    shapes: dict[str, tuple[int, ...]] | None = None) -> list:
    """The recipe's outputs as FeatureSpecs, with shapes given or read from the ONNX graph or a torch run."""
    from modelbuild.coreml import FeatureSpec, ImageOutput

    images = recipe.coreml[variant].image_outputs
    shapes = shapes if shapes is not None else _output_shapes(recipe, onnx_path, torch_model)
    features = []
    for name, spec in recipe.outputs.items():
        image = images.get(name)
        features.append(FeatureSpec(
            name=name, shape=shapes[name], description=spec.description,
            image=None if image is None else ImageOutput(
                scale=image.scale, bias=_bias(image), color_layout=image.color_layout)))
    return features


def metadata(recipe: Recipe):
    """The recipe's description and metadata as a modelbuild.coreml Metadata."""
    from modelbuild import __version__
    from modelbuild.coreml import Metadata

    return Metadata(short_description=recipe.description, author=recipe.metadata.author,
                    license=recipe.metadata.license, version=recipe.metadata.version,
                    user_defined={"modelbuild.recipe": recipe.name, "modelbuild.version": __version__})


def classifier(recipe: Recipe, root: Path):
    """The recipe's classifier section as a modelbuild.coreml Classifier (labels resolved)."""
    from modelbuild.coreml import Classifier
    from modelbuild.labels import resolve_labels

    spec = recipe.classifier
    return Classifier(labels=tuple(resolve_labels(spec.labels, root)), predicted_feature_name=spec.predicted_feature_name,
                      probabilities_output=spec.probabilities_output, add_softmax=spec.add_softmax)


def _bias(image) -> tuple[float, ...]:
    channels = 1 if image.color_layout == "GRAYSCALE" else 3
    return tuple(image.bias) if image.bias is not None else (0.0,) * channels


def _output_shapes(recipe: Recipe, onnx_path: Path, torch_model) -> dict[str, tuple[int, ...]]:
    """Output shapes at the default input shapes: from running the torch model, or the ONNX file."""
    from modelbuild.feeds import generated_inputs
    from modelbuild.validation.runners import OnnxRunner, TorchRunner

    feeds = generated_inputs(recipe)
    runner = TorchRunner(torch_model, list(recipe.outputs)) if torch_model is not None else OnnxRunner(onnx_path)
    return {name: tuple(value.shape) for name, value in zip(recipe.outputs, runner.run(feeds).values())}
