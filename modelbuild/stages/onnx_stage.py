"""ONNX stage: export (or copy the source ONNX file), surgery, onnx.checker, then onnxruntime vs the reference.

The export uses the TorchScript exporter, or torch.onnx's dynamo exporter with `onnx.exporter: dynamo`.

The reference is the PyTorch model, or for an ONNX-source recipe the source file itself
(so that surgery steps are proven not to change what the model computes).
"""
from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from modelbuild import atomic, metrics
from modelbuild.feeds import generated_inputs
from modelbuild.recipe import Recipe
from modelbuild.recipe.schema import Tolerance
from modelbuild.recipe.shapes import onnx_dynamic_axes
from modelbuild.shared_model import default_outputs, remember_outputs, shared_model
from modelbuild.sizes import artifact_sizes
from modelbuild.stages.onnx_dynamo import export_dynamo
from modelbuild.stages.onnx_errors import OnnxExportError
from modelbuild.stages.onnx_symbolics import extra_symbolics
from modelbuild.surgery import apply_steps
from modelbuild.validation.runners import OnnxRunner
from modelbuild.validation.tolerances import checks


def export_onnx(recipe: Recipe, root: Path, target: Path) -> dict[str, Any]:
    """Write the recipe's ONNX artifact at `target` (atomically) and prove it computes what the reference does.

    Returns the manifest entry: the largest |onnxruntime - reference| per output, the shape of each output
    under onnxruntime (what the ONNX-fed Core ML variants declare), opset, timings.
    """
    started = time.perf_counter()
    feeds = generated_inputs(recipe)
    with atomic.atomic_path(target) as temporary:
        if recipe.model.onnx is None:
            model, reference = shared_model(recipe, root), "PyTorch"
            if recipe.onnx.exporter == "dynamo":  # it traces with fake tensors: the reference is a run of its own
                _check_output_count(len(default_outputs(recipe, root)), recipe)
            traced = _export(model, feeds, recipe, temporary)
            if traced:  # the TorchScript exporter ran the model on the feeds: its outputs are the reference
                remember_outputs(recipe, root, traced)
            expected = default_outputs(recipe, root)
        else:
            source = root / recipe.model.onnx
            expected, reference = list(OnnxRunner(source).run(feeds).values()), "the source ONNX file"
            _check_output_count(len(expected), recipe)
            _copy_onnx(source, temporary)
        if recipe.onnx.surgery:
            apply_onnx_surgery(temporary, recipe.onnx.surgery)
        _check(temporary)
        figures = _compare(temporary, feeds, dict(zip(recipe.outputs, expected)))
        misses = _misses(recipe, figures)
        if misses:
            hint = _conditioning_hint(model, feeds, expected) if recipe.model.onnx is None else ""
            raise OnnxExportError(f"onnxruntime disagrees with {reference} on the example inputs: "
                                  f"{'; '.join(misses)}{hint}")

    return {"opset": recipe.onnx.opset, "reference": reference,
            "max_abs_error_vs_reference": {name: f["max_abs"] for name, f in figures.items()},
            "output_shapes": {name: f["shape"] for name, f in figures.items()},
            **artifact_sizes(target), "seconds": round(time.perf_counter() - started, 3)}


def _check_output_count(count: int, recipe: Recipe) -> None:
    if count != len(recipe.outputs):
        raise OnnxExportError(f"outputs: the model returns {count} output(s), "
                              f"the recipe names {len(recipe.outputs)} ({', '.join(recipe.outputs)})")


def _misses(recipe: Recipe, figures: dict[str, dict[str, float]]) -> list[str]:
    """One phrase per output whose difference exceeds onnx.max_error_of_range (or onnx.max_abs_error)."""
    limits = Tolerance(max_abs_of_range=recipe.onnx.max_error_of_range, max_abs=recipe.onnx.max_abs_error)
    misses = []
    for name, figure in figures.items():
        for check in checks(limits, figure):
            if not check.passed:
                why = (f"onnx.max_error_of_range {recipe.onnx.max_error_of_range:g} of the output's scale "
                       f"{figure['scale']:.3g}" if check.figure == "max_rel" else f"onnx.max_abs_error {recipe.onnx.max_abs_error:g}")
                misses.append(f"{name}: max abs error {figure['max_abs']:.3g} ({why})")
    return misses


def apply_onnx_surgery(path: Path, steps: list) -> None:
    """Rewrite the ONNX file at `path` with the recipe's surgery steps, in order."""
    import onnx

    onnx.save(apply_steps(onnx.load(str(path)), steps), str(path))


def _run_torch(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every output of the model on the feeds (however many it returns)."""
    import torch

    with torch.no_grad():
        result = model(*(torch.from_numpy(v) for v in feeds.values()))
    return [t.numpy() for t in (result if isinstance(result, (tuple, list)) else (result,))]


def _conditioning_hint(model, feeds: dict[str, np.ndarray], expected: list[np.ndarray]) -> str:
    """When PyTorch's float32 result is itself far from its float64 one, say so: then no exporter can agree.

    A randomly initialised or calibrated network can amplify the generated example inputs so much
    that rounding alone moves its outputs. Computed only after a failed comparison; the model is put
    back in float32 (exactly: every float32 value is a float64 value).
    """
    try:
        exact = _run_torch(model.double(),
                           {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in feeds.items()})
    except Exception:  # a model that cannot run in float64 gets no hint
        return ""
    finally:
        model.float()
    worst = max((float(np.max(np.abs(e.astype(np.float64) - x))) / max(float(np.max(np.abs(x))), 1e-30)
                 for e, x in zip(expected, exact) if e.dtype.kind == "f" and e.size), default=0.0)
    if worst < 1e-5:
        return ""
    return (f" (PyTorch itself, float32 against float64, differs by {worst:.2g} of the output's scale on these "
            "inputs: the reference is ill-conditioned there, as random or calibrated weights on generated inputs "
            "can be; use trained weights, or raise onnx.max_error_of_range if that difference is acceptable)")


def _export(model, feeds: dict[str, np.ndarray], recipe: Recipe, path: Path) -> list[np.ndarray] | None:
    """Export with the recipe's exporter: the TorchScript one (below, with `onnx_symbolics`) or dynamo
    (modelbuild.stages.onnx_dynamo). The TorchScript exporter traces the model on the feeds, a real run:
    its outputs are returned (None from dynamo, which traces with fake tensors)."""
    if recipe.onnx.exporter == "dynamo":
        export_dynamo(model, feeds, recipe, path)
        return None
    import torch

    seen: list[np.ndarray] = []
    with warnings.catch_warnings(), extra_symbolics(recipe.onnx.opset), _declared_inputs_only(model, recipe, seen):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(torch.from_numpy(v) for v in feeds.values()), str(path),
                          input_names=list(recipe.inputs), output_names=list(recipe.outputs),
                          opset_version=recipe.onnx.opset, do_constant_folding=True, dynamo=False,
                          dynamic_axes=onnx_dynamic_axes(recipe) or None)
    return seen


@contextlib.contextmanager
def _declared_inputs_only(model, recipe: Recipe, seen: list[np.ndarray]):
    """The model's forward seen with the declared inputs as its only parameters, for the block; the outputs
    of the (one) call are checked against the recipe's outputs and copied into `seen`.

    The TorchScript exporter passes every defaulted parameter of forward it was not given (it reads
    the signature), and makes the Python numbers among them graph inputs: transformers'
    `logits_to_keep=0` became an undeclared ONNX input. The modules, hence node names, are unchanged.
    """
    had_own = "forward" in vars(model)
    forward = model.forward

    def declared(*args):
        result = forward(*args)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        _check_output_count(len(outputs), recipe)
        seen[:] = [t.detach().numpy().copy() for t in outputs]
        return result

    declared.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY) for name in recipe.inputs])
    model.forward = declared
    try:
        yield
    finally:
        if had_own:
            model.forward = forward
        else:
            del model.forward


def _copy_onnx(source: Path, path: Path) -> None:
    import onnx

    onnx.save(onnx.load(str(source)), str(path))


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        raise OnnxExportError(f"onnx.checker refused the ONNX file: {err}") from None


def _compare(path: Path, feeds: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """onnxruntime on the file (inputs and outputs by position); per output its max abs difference, scale and
    shape."""
    got = OnnxRunner(path).run(feeds).values()
    return {name: {"max_abs": metrics.max_abs_error(value, expected[name]), "scale": metrics.scale(expected[name]),
                   "shape": [int(d) for d in value.shape]} for name, value in zip(expected, got)}
