"""Run every artifact of a recipe on the validation samples and compare with PyTorch."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from modelbuild import metrics
from modelbuild.feeds import generated_inputs
from modelbuild.fingerprint import tool_version
from modelbuild.labels import resolve_labels
from modelbuild.recipe import Recipe
from modelbuild.recipe.shapes import outside_shape
from modelbuild.samples import Sample, make_samples
from modelbuild.shared_model import shared_model
from modelbuild.sizes import artifact_sizes
from modelbuild.validation import pictures
from modelbuild.validation.agreement import top_k
from modelbuild.validation.flatness import fix_for, flat_outputs
from modelbuild.validation.report import Check, Comparison, Report, TaskFigure
from modelbuild.validation.runners import CoreMLRunner, OnnxRunner, Runner, TorchRunner, reference_pixels
from modelbuild.validation.tolerances import checks, over_samples, tolerance_for

TOOLS = ("torch", "onnx", "onnxruntime", "coremltools", "onnx2coreml", "numpy")


def validate_recipe(recipe: Recipe, root: Path, artifact_dir: Path, *, backend: str = "auto",
                    progress: Callable[[str], None] = lambda line: None,
                    failed: dict[str, str] | None = None) -> Report:
    """Compare the ONNX file and every Core ML variant with the PyTorch model on the recipe's samples.

    `failed`: artifacts ('onnx' or a variant) whose build failed, with the error: each becomes a
    failed row (its last good file, if any, is not judged), and the others are compared as usual.
    """
    failed = failed or {}
    reference = CachedReference(reference_runner(recipe, root), list(recipe.outputs))
    samples = make_samples(recipe, root)
    report = Report(recipe=recipe.name, reference=reference.backend, samples=[s.name for s in samples],
                    tools={name: tool_version(name) for name in TOOLS})
    for sample in samples:
        _torch_figures(recipe, reference, sample, report)
    report.flat_outputs = _flat_reference_outputs(recipe, reference, samples)
    report.fix_for_flat = fix_for(recipe)
    candidates: list[tuple[str, str, str, bool, Callable[[], Runner]]] = [
        ("onnx", recipe.onnx_file, "float32", False, lambda: OnnxRunner(artifact_dir / recipe.onnx_file))]
    judged_by = {name: spec.compression for name, spec in recipe.coreml.items()}
    labels = resolve_labels(recipe.classifier.labels, root) if recipe.classifier else None
    for variant, spec in recipe.coreml.items():
        file = recipe.coreml_file(variant)
        classifier = ((next(iter(recipe.outputs)), recipe.classifier.probabilities_output, labels)
                      if recipe.is_classifier(variant) else None)
        candidates.append((variant, file, spec.compute_precision, spec.fixed_shape,
                           lambda f=file, v=variant, s=spec, c=classifier: CoreMLRunner(
                               artifact_dir / f, v, s.image_inputs, s.image_outputs, backend, c)))
    for name, file, precision, fixed_shape, make in candidates:
        mine = [s for s in samples if s.shape_label == "default"] if fixed_shape else samples
        if name in failed:
            report.artifacts[name] = {"file": file, "backend": "-"}
            report.comparisons += [_error(name, "-", "-", f"not built: {failed[name]}")]
            continue
        try:
            runner = make()
        except Exception as err:  # a file the runtime cannot load is a failed comparison, reported with the rest
            report.artifacts[name] = {"file": file, "backend": "-"}
            report.comparisons += [_error(name, s.name, out, err) for s in mine for out in recipe.outputs]
            continue
        report.artifacts[name] = {"file": file, "backend": runner.backend, **_sizes(artifact_dir / file)}
        if judged_by.get(name) is not None:
            report.artifacts[name]["compression"] = judged_by[name].kind
        if name in recipe.coreml and recipe.coreml[name].from_variant is not None:
            report.artifacts[name]["from_variant"] = recipe.coreml[name].from_variant
        for sample in mine:
            progress(f"{name} on {sample.name}")
            _compare_sample(recipe, reference, runner, precision, sample, report, labels, judged_by.get(name))
        report.comparisons += _over_samples(recipe, name, precision, judged_by.get(name), report)
        if isinstance(runner, CoreMLRunner) and not fixed_shape:
            report.comparisons += _refuses_undeclared_shapes(recipe, runner, samples[0])
    return report


def _sizes(path: Path) -> dict[str, int]:
    return artifact_sizes(path) if path.exists() else {}


def _tolerance(recipe: Recipe, artifact: str, precision: str, compression, image_output: bool):
    return tolerance_for(recipe.validate_.tolerances, artifact, precision, compression, image_output,
                         recipe.classifier is not None, recipe.validate_.denoise is not None)


def _over_samples(recipe: Recipe, artifact: str, precision: str, compression, report: Report) -> list[Comparison]:
    """The checks judged over all of an artifact's samples (top-1 agreement rate, mean denoising drop)."""
    mine = [c for c in report.comparisons if c.artifact == artifact]
    top1 = [c.figures["top1"] for c in mine if "top1" in c.figures]
    drops = [t.figures["psnr_torch_same_input"] - t.figures["psnr_output"] for t in report.task_figures
             if t.artifact == artifact and "psnr_torch_same_input" in t.figures]
    found = over_samples(_tolerance(recipe, artifact, precision, compression, False), top1, drops)
    comparisons = []
    for check in found:
        count = len(top1) if check.figure == "top1_rate" else len(drops)
        label = "top-1 agreement" if check.figure == "top1_rate" else "denoise PSNR drop vs PyTorch"
        units = "fraction of samples" if check.figure == "top1_rate" else "dB"
        comparisons.append(Comparison(artifact, f"(all {count})", label, units, {check.figure: check.value},
                                      [check]))
    return comparisons


def _refuses_undeclared_shapes(recipe: Recipe, runner: Runner, sample: Sample) -> list[Comparison]:
    """For each flexible input, a shape just outside the declared ones must be refused by the model."""
    checks = []
    for name, spec in recipe.inputs.items():
        shape = outside_shape(spec)
        if shape is None:
            continue
        feeds = dict(sample.feeds)
        feeds[name] = np.zeros(shape, np.float32)
        try:
            runner.run(feeds)
            refused, note = 0.0, None
        except Exception as err:  # the runtime's refusal is what we want to see
            refused, note = 1.0, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        label = f"{name} {'x'.join(map(str, shape))} (undeclared)"
        checks.append(Comparison(runner.name, label, "(refused)", "-", {"refused": refused},
                                 [Check("refused", refused, 1.0, "min")], note=note))
    return checks


PROBE_SEED = 7919  # an extra input set, when the samples alone cannot show that an output varies


def _flat_reference_outputs(recipe: Recipe, reference: "CachedReference", samples: list[Sample]) -> dict[str, str]:
    """The reference outputs that are flat (see `modelbuild.validation.flatness`), with why."""
    per_sample = [reference.run(sample.feeds) for sample in samples]
    if sum(s.shape_label == "default" for s in samples) < 2:
        per_sample.append(reference.run(generated_inputs(recipe, PROBE_SEED)))
    return flat_outputs(per_sample, [name for name in recipe.outputs if name not in recipe.validate_.allow_flat])


def reference_runner(recipe: Recipe, root: Path) -> Runner:
    """The PyTorch model, or onnxruntime on the source file of an ONNX-source recipe."""
    if recipe.model.onnx is not None:
        runner = OnnxRunner(root / recipe.model.onnx, name="source")
        runner.backend = f"{runner.backend} on {recipe.model.onnx}"
        return runner

    return TorchRunner(shared_model(recipe, root), list(recipe.outputs))


class CachedReference:
    """The reference, run once per distinct set of inputs (image variants share quantized inputs)."""

    def __init__(self, runner: Runner, outputs: list[str]) -> None:
        self.runner, self.outputs, self.backend, self.name = runner, outputs, runner.backend, runner.name
        self._cache: dict[str, dict[str, np.ndarray]] = {}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reference outputs under the recipe's output names."""
        key = hashlib.sha1(b"".join(np.ascontiguousarray(v).tobytes() for v in feeds.values())).hexdigest()
        if key not in self._cache:
            self._cache[key] = dict(zip(self.outputs, self.runner.run(feeds).values()))
        return self._cache[key]


def _torch_figures(recipe: Recipe, reference: "CachedReference", sample: Sample, report: Report) -> None:
    outputs = reference.run(sample.feeds)
    _denoise_figures(recipe, reference.name, sample, sample.feeds, outputs, report)
    pictures.add_sample(report, recipe, sample, outputs)


def _compare_sample(recipe: Recipe, reference: "CachedReference", runner: Runner, precision: str, sample: Sample,
                    report: Report, labels: list[str] | None = None, compression=None) -> None:
    feeds = runner.effective_feeds(sample.feeds)
    expected = reference.run(feeds)
    try:
        got = runner.run(feeds)
    except Exception as err:  # e.g. a shape mismatch the runtime caught: a failure with its message
        report.comparisons += [_error(runner.name, sample.name, out, err) for out in recipe.outputs]
        return
    images, probabilities = runner.image_outputs(), runner.probability_outputs()
    classifier = recipe.classifier is not None
    model_units, reference_units = {}, {}
    for output in recipe.outputs:
        if output not in got:
            report.comparisons.append(_error(runner.name, sample.name, output, "the artifact has no such output"))
            continue
        image = images.get(output)
        ref = reference_pixels(expected[output], image) if image else expected[output]
        compared = "values"
        if output in probabilities:
            ref, compared = softmax(ref), "probabilities"
        tolerance = _tolerance(recipe, runner.name, precision, compression, bool(image))
        comparison = _compare(runner.name, sample.name, output, got[output], ref, image is not None, tolerance,
                              classifier)
        comparison.compared = compared
        report.comparisons.append(comparison)
        model_units[output] = _to_model_units(got[output], image)
        reference_units[output] = _to_model_units(ref, image)
    _denoise_figures(recipe, runner.name, sample, feeds, model_units, report, expected)
    pictures.add_artifact(report, sample, runner.name, model_units, reference_units)
    first = next(iter(recipe.outputs))
    if labels is not None and first in got:
        report.add_top5(sample.name, reference.name, _top5(expected[first], labels, from_logits=True))
        report.add_top5(sample.name, runner.name, _top5(got[first], labels, from_logits=first not in probabilities))


def _top5(scores: np.ndarray, labels: list[str], from_logits: bool) -> list[tuple[str, float]]:
    """The five most probable labels with their probabilities."""
    probabilities = softmax(scores.reshape(1, -1))[0] if from_logits else scores.reshape(-1)
    return [(labels[i] if i < len(labels) else str(i), float(probabilities[i])) for i in top_k(probabilities, 5)]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def _compare(artifact: str, sample: str, output: str, got: np.ndarray, ref: np.ndarray, pixels: bool,
             tolerance, classifier: bool = False) -> Comparison:
    units = "pixel levels" if pixels else "output units"
    if got.shape != ref.shape:
        return Comparison(artifact, sample, output, units, {}, [],
                          error=f"shape {list(got.shape)} differs from the reference's {list(ref.shape)}")
    scale = metrics.scale(ref)
    figures = {"max_abs": metrics.max_abs_error(got, ref), "max_rel": metrics.max_relative_error(got, ref),
               "psnr": metrics.psnr(got, ref, peak=255.0 if pixels else scale), "scale": scale}
    if classifier:
        reference_top1 = top_k(ref.reshape(-1), 1)[0]
        figures["top1"] = float(top_k(got.reshape(-1), 1)[0] == reference_top1)
        figures["top5"] = float(reference_top1 in top_k(got.reshape(-1), 5))
    return Comparison(artifact, sample, output, units, figures, checks(tolerance, figures))


def _to_model_units(value: np.ndarray, image) -> np.ndarray:
    if image is None:
        return value
    bias = np.asarray(image.bias or [0.0] * value.shape[1], np.float32).reshape(1, -1, 1, 1)
    return (value - bias) / image.scale


def _denoise_figures(recipe: Recipe, artifact: str, sample: Sample, feeds: dict, outputs: dict,
                     report: Report, reference_outputs: dict | None = None) -> None:
    """PSNR of the noisy input and of the output against the clean image; with `reference_outputs`, also
    PyTorch's PSNR on the very inputs the artifact saw (8-bit images for Image I/O variants)."""
    denoise = recipe.validate_.denoise
    if denoise is None or sample.clean is None:
        return
    low, high = recipe.inputs[denoise.image].range
    output = outputs[next(iter(recipe.outputs))]
    noisy = np.clip(feeds[denoise.image], low, high)
    figures = {"sigma": denoise.sigma, "psnr_input": metrics.psnr(noisy, sample.clean, peak=high - low),
               "psnr_output": metrics.psnr(output, sample.clean, peak=high - low)}
    if reference_outputs is not None:
        reference = reference_outputs[next(iter(recipe.outputs))]
        figures["psnr_torch_same_input"] = metrics.psnr(reference, sample.clean, peak=high - low)
    report.task_figures.append(TaskFigure(artifact, sample.name, "denoise", figures))


def _error(artifact: str, sample: str, output: str, err: object) -> Comparison:
    message = f"{type(err).__name__}: {err}" if isinstance(err, Exception) else str(err)
    return Comparison(artifact, sample, output, "-", {}, [], error=message.splitlines()[0] if message else "error")
