"""Core ML stage: one recipe variant -> .mlmodel / .mlpackage through modelbuild.coreml."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelbuild.recipe import Recipe


def build_coreml(recipe: Recipe, root: Path, variant: str, onnx_path: Path, target: Path) -> dict[str, Any]:
    """Convert one variant and save it atomically at `target`; return the manifest entry."""
    from modelbuild.coreml import convert, save_mlmodel

    started = time.perf_counter()
    spec = recipe.coreml[variant]
    torch_model = None
    if spec.frontend == "torch":
        from modelbuild.torch_model import build_model

        torch_model = build_model(recipe, root)
    mlmodel = convert(
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
    )
    if spec.surgery:
        from modelbuild.surgery import apply_steps

        mlmodel = apply_steps(mlmodel, spec.surgery)
    save_mlmodel(mlmodel, target)
    return {"frontend": spec.frontend, "format": spec.format,
            "minimum_deployment_target": spec.minimum_deployment_target,
            "compute_precision": spec.compute_precision,
            "seconds": round(time.perf_counter() - started, 3)}


def input_features(recipe: Recipe, variant: str) -> list:
    """The recipe's inputs as modelbuild.coreml FeatureSpecs (images where the variant says so)."""
    from modelbuild.coreml import FeatureSpec, ImageInput

    images = recipe.coreml[variant].image_inputs
    features = []
    for name, spec in recipe.inputs.items():
        image = images.get(name)
        features.append(FeatureSpec(
            name=name, shape=tuple(spec.shape), description=spec.description,
            image=None if image is None else ImageInput(
                scale=image.scale, bias=_bias(image), color_layout=image.color_layout)))
    return features


def output_features(recipe: Recipe, variant: str, onnx_path: Path, torch_model) -> list:
    """The recipe's outputs as FeatureSpecs, with shapes from the ONNX graph or a torch run."""
    from modelbuild.coreml import FeatureSpec, ImageOutput

    images = recipe.coreml[variant].image_outputs
    shapes = _output_shapes(recipe, onnx_path, torch_model)
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
    if torch_model is None:
        import onnx

        graph = onnx.load(str(onnx_path), load_external_data=False).graph
        return {out.name: tuple(d.dim_value for d in out.type.tensor_type.shape.dim) for out in graph.output}
    import torch

    from modelbuild.torch_model import example_inputs

    with torch.no_grad():
        result = torch_model(*example_inputs(recipe).values())
    result = result if isinstance(result, (tuple, list)) else (result,)
    return {name: tuple(tensor.shape) for name, tensor in zip(recipe.outputs, result)}
