"""Frontends: turn an ONNX file or a torch module into a MIL program.

Both frontends stop at coremltools' MIL `Program` (the common intermediate
form), so that renaming, image I/O and serialisation happen in one place for
both (see `modelbuild.coreml.program_edits` and `modelbuild.coreml.conversion`).

- onnx: onnx2coreml's `Converter.to_mil` (onnx2coreml's own `convert` knows
  no image I/O and no iOS13/14 targets; its MIL lowering does), after the automatic
  repairs of `modelbuild.coreml.onnx_repairs`.
- torch: `torch.jit.trace` on example tensors of the declared shapes and dtypes
  (capture "trace"), or `torch.export.export` with the flexible dimensions as Dims
  (capture "export", see `modelbuild.coreml.exported_program`), then
  `coremltools.convert(..., convert_to="milinternal")` in float32 with the declared
  input types (fp16 is applied later, so I/O never silently turns FLOAT16), with
  modelbuild's extra torch-op converters (`modelbuild.coreml.torch_ops`).

Converter errors (onnx2coreml's, coremltools', a failed trace as `TraceFailure`) propagate
to `modelbuild.coreml.conversion`, which turns them into one-line diagnoses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.exported_program import capture as export_capture
from modelbuild.coreml.features import FeatureSpec, example_tensors
from modelbuild.coreml.flexible import ct_shape
from modelbuild.coreml.onnx_repairs import repair_for_onnx2coreml
from modelbuild.coreml.program_edits import numpy_array_type
from modelbuild.coreml.targets import Plan
from modelbuild.coreml.torch_ops import extra_torch_ops


def onnx_to_program(ct, plan: Plan, onnx_path: Path | None, inputs: list[FeatureSpec] | None = None) -> Any:
    """Lower the ONNX model at `onnx_path` to a MIL program at the plan's opset.

    onnx2coreml needs fixed input shapes: dynamic input dimensions (an export
    with dynamic axes) are set to the declared `inputs` shapes first.
    """
    if onnx_path is None:
        raise CoreMLBuildError("Frontend 'onnx' needs onnx_path, the ONNX file to convert; none was given.")
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise CoreMLBuildError(f"Frontend 'onnx' needs an ONNX file; {str(onnx_path)!r} does not exist.")
    import onnx
    import onnx2coreml

    model = onnx.load(str(onnx_path))
    if inputs:
        fix_dynamic_input_shapes(model, inputs)
    model = repair_for_onnx2coreml(model, flexible=any(f.flexible is not None for f in inputs or ()))
    fp16 = plan.format == "mlprogram" and plan.compute_precision == "float16"
    return onnx2coreml.Converter().to_mil(model, target=plan.target, precision=ct.precision.FLOAT16 if fp16 else None)


def fix_dynamic_input_shapes(model: Any, inputs: list[FeatureSpec]) -> None:
    """Give the ONNX graph's dynamic input dimensions the declared sizes, by position, and re-infer shapes.

    Does nothing to a graph whose inputs are all static (so its bytes, and
    the conversion, stay exactly as exported).
    """
    import onnx

    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    graph_inputs = [value for value in graph.input if value.name not in initializers]
    changed = False
    for value, feature in zip(graph_inputs, inputs):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(feature.shape):
            continue  # check_signature names the mismatch after conversion
        for dim, size in zip(dims, feature.shape):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.Clear()
                dim.dim_value = int(size)
                changed = True
    if not changed:
        return
    for value in list(graph.output) + list(graph.value_info):
        value.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model)
    model.CopyFrom(inferred)


def torch_to_program(ct, plan: Plan, torch_model: Any, inputs: list[FeatureSpec], capture: str = "trace") -> Any:
    """Capture `torch_model` on ones of the declared (default) input shapes and convert it to MIL.

    `capture` "trace" uses torch.jit.trace, "export" torch.export. Flexible inputs
    get their RangeDims / EnumeratedShapes here, so that the program computes
    shapes instead of baking the default ones in.
    """
    import torch

    if not isinstance(torch_model, torch.nn.Module):
        raise CoreMLBuildError(
            "Frontend 'torch' needs torch_model, a torch.nn.Module in eval mode; "
            f"got {type(torch_model).__name__}."
        )
    if torch_model.training:
        raise CoreMLBuildError(
            f"Frontend 'torch' needs the model in eval mode ({type(torch_model).__name__} is in "
            "training mode): call model.eval() first so dropout and batch norm trace as inference."
        )
    if capture == "export":
        captured = export_capture(torch_model, inputs)
    elif capture == "trace":
        captured = _trace(torch_model, inputs)
    else:
        raise CoreMLBuildError(f"Unknown capture {capture!r} for frontend 'torch'; expected 'trace' or 'export'.")
    tensor_types = [
        ct.TensorType(name=feature.name, shape=ct_shape(ct, feature), dtype=numpy_array_type(feature))
        for feature in inputs
    ]
    with extra_torch_ops():
        return ct.convert(
            captured,
            source="pytorch",
            convert_to="milinternal",
            inputs=tensor_types,
            minimum_deployment_target=plan.target,
            compute_precision=ct.precision.FLOAT32,
        )


def _trace(torch_model: Any, inputs: list[FeatureSpec]) -> Any:
    """torch.jit.trace on ones of the declared (default) input shapes and dtypes."""
    import torch

    examples = example_tensors(inputs)
    try:
        with torch.no_grad():
            return torch.jit.trace(torch_model, examples, check_trace=False)
    except Exception as exc:
        raise TraceFailure(
            f"torch.jit.trace failed on {type(torch_model).__name__} with inputs of shapes "
            f"{[tuple(f.shape) for f in inputs]}: {exc}"
        ) from exc


class TraceFailure(RuntimeError):
    """torch.jit.trace raised: the message names the model, the example shapes and the tracer's error."""
