"""Core ML stage: one recipe variant -> .mlmodel / .mlpackage through modelbuild.coreml."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelbuild import __version__, manifest, verify
from modelbuild.coreml import Classifier, Metadata, convert, save_mlmodel
from modelbuild.feeds import generated_inputs
from modelbuild.labels import resolve_labels
from modelbuild.onnx_shapes import inferred_output_shapes
from modelbuild.quiet import coremltools
from modelbuild.recipe import Recipe
from modelbuild.recipe.compression import compress
from modelbuild.recipe.features import input_features, output_features
from modelbuild.samples import make_samples
from modelbuild.shared_model import default_outputs, shared_model
from modelbuild.sizes import artifact_sizes
from modelbuild.stage_records import stat_cache_file
from modelbuild.surgery import apply_steps
from modelbuild.validation.runners import OnnxRunner, to_pil, values_to_pixels


def build_coreml(recipe: Recipe, root: Path, variant: str, onnx_path: Path, target: Path) -> dict[str, Any]:
    """Convert one variant (or load the artifact of the variant it is made from), compress it, apply its
    surgery, and save it atomically at `target`; return the manifest entry."""
    started = time.perf_counter()
    spec = recipe.coreml[variant]
    if spec.from_variant is not None:
        mlmodel = load_artifact(target.parent / recipe.coreml_file(spec.from_variant))
    else:
        mlmodel = _convert(recipe, root, variant, onnx_path)
    if spec.compression is not None:
        calibration = calibration_inputs(recipe, root, variant) if spec.compression.calibrated else None
        mlmodel = compress(mlmodel, spec.compression, calibration)
    if spec.surgery:
        mlmodel = apply_steps(mlmodel, spec.surgery)
    save_mlmodel(mlmodel, target)

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
    spec = recipe.coreml[variant]
    torch_model = None
    if spec.frontend == "torch":
        torch_model = shared_model(recipe, root)
    return convert(
        frontend=spec.frontend,
        onnx_path=onnx_path if spec.frontend == "onnx" else None,
        torch_model=torch_model,
        inputs=input_features(recipe, variant),
        outputs=output_features(recipe, variant, _output_shapes(recipe, onnx_path, root, spec.frontend)),
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
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is not built")
    return coremltools().models.MLModel(str(path), skip_model_load=True)


def calibration_inputs(recipe: Recipe, root: Path, variant: str) -> list[dict[str, Any]]:
    """The validation samples at the default shapes, as a Core ML model of the variant takes them
    (image inputs as PIL images): what activation quantization is calibrated on."""
    images = recipe.coreml[variant].image_inputs
    return [{name: to_pil(values_to_pixels(value, images[name]), images[name]) if name in images else value
             for name, value in sample.feeds.items()}
            for sample in make_samples(recipe, root) if sample.shape_label == "default"]


def metadata(recipe: Recipe):
    """The recipe's description and metadata as a modelbuild.coreml Metadata."""
    return Metadata(short_description=recipe.description, author=recipe.metadata.author,
                    license=recipe.metadata.license, version=recipe.metadata.version,
                    user_defined={"modelbuild.recipe": recipe.name, "modelbuild.version": __version__})


def classifier(recipe: Recipe, root: Path):
    """The recipe's classifier section as a modelbuild.coreml Classifier (labels resolved)."""
    spec = recipe.classifier
    return Classifier(labels=tuple(resolve_labels(spec.labels, root)), predicted_feature_name=spec.predicted_feature_name,
                      probabilities_output=spec.probabilities_output, add_softmax=spec.add_softmax)


def _output_shapes(recipe: Recipe, onnx_path: Path, root: Path | None, frontend: str) -> dict[str, tuple[int, ...]]:
    """Output shapes at the default input shapes, without running the model again where that can be avoided.

    Frontend 'torch': the model's outputs on the generated inputs (computed once per process, see
    `modelbuild.shared_model`). Frontend 'onnx': ONNX shape inference on the file; when it leaves a size unknown
    (shape arithmetic in a flexible export), the shapes onnxruntime gave in the ONNX stage, if its record is of
    this very file; else onnxruntime runs the file.
    """
    if frontend == "torch":
        shapes = [value.shape for value in default_outputs(recipe, root)]
    else:
        shapes = (inferred_output_shapes(onnx_path, [tuple(spec.shape) for spec in recipe.inputs.values()])
                  or _recorded_output_shapes(recipe, onnx_path))
        if shapes is None:
            shapes = [value.shape for value in OnnxRunner(onnx_path).run(generated_inputs(recipe)).values()]
    return {name: tuple(int(d) for d in shape) for name, shape in zip(recipe.outputs, shapes)}


def _recorded_output_shapes(recipe: Recipe, onnx_path: Path) -> list[list[int]] | None:
    """The output shapes in the ONNX stage's record, when the record is of the file at `onnx_path` as it is now."""
    record = manifest.read_record(onnx_path.parent, "onnx") or {}
    shapes = record.get("output_shapes")
    if (record.get("outcome") != "built" or record.get("file") != onnx_path.name or not isinstance(shapes, dict)
            or list(shapes) != list(recipe.outputs)):
        return None
    if verify.changed(onnx_path, record, verify.StatCache(stat_cache_file(onnx_path.parent, "onnx"))) is not None:
        return None
    return list(shapes.values())
