"""ONNX stage: torch.onnx.export, onnx.checker, then onnxruntime vs PyTorch on the example inputs."""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from modelbuild import atomic
from modelbuild.recipe import Recipe


class OnnxExportError(RuntimeError):
    """The export failed, the checker refused the file, or onnxruntime disagrees with PyTorch."""


def export_onnx(recipe: Recipe, root: Path, target: Path) -> dict[str, Any]:
    """Export the recipe's model to `target` (atomically) and prove it computes what PyTorch does.

    Returns the manifest entry: the largest |onnxruntime - torch| per output, opset, timings.
    """
    import torch

    from modelbuild.torch_model import build_model, example_inputs

    started = time.perf_counter()
    model = build_model(recipe, root)
    examples = example_inputs(recipe)
    with torch.no_grad():
        expected = _as_tuple(model(*examples.values()))
    if len(expected) != len(recipe.outputs):
        raise OnnxExportError(f"outputs: the model returns {len(expected)} output(s), "
                              f"the recipe names {len(recipe.outputs)} ({', '.join(recipe.outputs)})")
    with atomic.atomic_path(target) as temporary:
        _export(model, examples, recipe, temporary)
        errors = compare_with_onnxruntime(temporary, examples, dict(zip(recipe.outputs, expected)))
        worst = max(errors.values())
        if worst > recipe.onnx.max_abs_error:
            table = ", ".join(f"{name}: {err:.3g}" for name, err in errors.items())
            raise OnnxExportError(f"onnxruntime disagrees with PyTorch on the example inputs: max abs error "
                                  f"{table} > onnx.max_abs_error {recipe.onnx.max_abs_error:g}")
    return {"opset": recipe.onnx.opset, "max_abs_error_vs_torch": errors,
            "seconds": round(time.perf_counter() - started, 3)}


def _export(model, examples: dict, recipe: Recipe, path: Path) -> None:
    import onnx
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(examples.values()), str(path), input_names=list(recipe.inputs),
                          output_names=list(recipe.outputs), opset_version=recipe.onnx.opset,
                          do_constant_folding=True, dynamo=False)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        raise OnnxExportError(f"onnx.checker refused the exported file: {err}") from None


def compare_with_onnxruntime(path: Path, feeds: dict, expected: dict) -> dict[str, float]:
    """Run the ONNX file with onnxruntime; the max abs difference from `expected`, per output."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    arrays = {name: tensor.numpy() for name, tensor in feeds.items()}
    got = session.run(list(expected), arrays)
    return {name: float(abs(value - expected[name].numpy()).max()) for name, value in zip(expected, got)}


def _as_tuple(result: Any) -> tuple:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)
