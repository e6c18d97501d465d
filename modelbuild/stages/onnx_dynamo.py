"""`onnx.exporter: dynamo`: torch.onnx.export(..., dynamo=True), deterministic and at the recipe's opset.

1. Export with the recipe's input/output names, flexible dimensions as `torch.export.Dim`s
   (modelbuild.recipe.shapes.export_bounds) and torch.onnx's optimiser (constant folding, batch-norm
   fusion), at opset max(onnx.opset, 18): the exporter has no implementations below 18.
2. Check that the file's inputs are flexible exactly where the recipe says (torch.onnx may
   specialise a dimension it cannot keep symbolic).
3. Strip the debugging metadata of nodes, values and initializers. The exporter records each
   node's source file and line (absolute paths), fx node and module path there, so the bytes
   would change with the project's folder or an edited comment, and doit's early cutoff
   (a byte-identical ONNX file stops the rebuild) would not work.
4. Below opset 18, convert down with onnx.version_converter after the optimiser ran (its
   adapters need constant axes, which the optimiser has folded into initializers), and drop
   attributes the older operator lacks when they hold the newer one's default (the converter
   leaves ReduceMean's noop_with_empty_axes=0 at 17). A conversion the converter cannot do is
   refused with its reason.
5. Save with the weights inside the file (no external data).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modelbuild.recipe import Recipe
from modelbuild.recipe.shapes import flexible_dims, recipe_export_bounds
from modelbuild.stages.onnx_errors import OnnxExportError
from modelbuild.torch_export import dynamic_shapes, quiet_export

DYNAMO_OPSET = 18  # the oldest opset torch.onnx's dynamo exporter writes


def export_dynamo(model, feeds: dict[str, np.ndarray], recipe: Recipe, path: Path) -> None:
    """Write the dynamo export of `model` at `path` (see the module docstring for the steps)."""
    import onnx

    proto = _export(model, feeds, recipe)
    _check_flexible_inputs(proto, recipe)
    strip_debug_metadata(proto)
    if recipe.onnx.opset < DYNAMO_OPSET:
        proto = convert_opset(proto, recipe.onnx.opset)
    written = {entry.domain: entry.version for entry in proto.opset_import}.get("", None)
    if written != recipe.onnx.opset:
        raise OnnxExportError(f"onnx.exporter dynamo wrote ai.onnx opset {written}, not onnx.opset "
                              f"{recipe.onnx.opset}; use onnx.opset {written} or onnx.exporter torchscript.")
    try:
        onnx.save(proto, str(path))
    except ValueError as exc:  # protobuf refuses models over 2 GB
        raise OnnxExportError(f"onnx.exporter dynamo: cannot write the ONNX file with its weights inside: {exc}") from exc


def _export(model, feeds: dict[str, np.ndarray], recipe: Recipe):
    import torch

    names = list(recipe.inputs)
    try:
        with quiet_export():
            program = torch.onnx.export(
                model, tuple(torch.from_numpy(v) for v in feeds.values()), dynamo=True,
                input_names=names, output_names=list(recipe.outputs),
                opset_version=max(recipe.onnx.opset, DYNAMO_OPSET), optimize=True, verbose=False,
                dynamic_shapes=dynamic_shapes(names, recipe_export_bounds(recipe)))
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()][:6]
        raise OnnxExportError(f"onnx.exporter dynamo: torch.onnx.export(dynamo=True) failed: "
                              f"{chr(10).join(lines) or type(exc).__name__}") from exc
    return program.model_proto


def _check_flexible_inputs(proto, recipe: Recipe) -> None:
    """Every declared flexible dimension is symbolic in the file, every other one has the default size."""
    for value, (name, spec) in zip(proto.graph.input, recipe.inputs.items()):
        dims = value.type.tensor_type.shape.dim
        for d, size in enumerate(spec.shape):
            flexible = d in flexible_dims(spec)
            symbolic = d < len(dims) and dims[d].HasField("dim_param")
            if flexible != symbolic or (not flexible and dims[d].dim_value != size):
                got = [dim.dim_param or dim.dim_value for dim in dims]
                raise OnnxExportError(
                    f"onnx.exporter dynamo: input {name!r} came out with shape {got}, but inputs.{name} declares "
                    f"{spec.shape} with flexible dimensions {flexible_dims(spec)}; torch.export specialised "
                    f"dimension {d} to {got[d]}. Use onnx.exporter torchscript, or make that dimension fixed.")


def strip_debug_metadata(proto) -> None:
    """Remove metadata_props from every node, graph input/output/value_info and initializer (in place)."""
    graph = proto.graph
    for item in [*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        del item.metadata_props[:]
    for function in proto.functions:
        for node in function.node:
            del node.metadata_props[:]


def convert_opset(proto, opset: int):
    """The model at ai.onnx `opset` (older than the export's), or OnnxExportError naming what the converter lacks."""
    import onnx
    import onnx.version_converter
    from onnx import helper

    try:
        converted = onnx.version_converter.convert_version(proto, opset)
    except (RuntimeError, onnx.checker.ValidationError) as exc:
        reason = str(exc).split("failed: ", 1)[-1].strip()
        raise OnnxExportError(
            f"onnx.opset {opset}: the dynamo exporter writes opset {DYNAMO_OPSET} and onnx's version converter "
            f"cannot take this model down to {opset} ({reason}). Use onnx.opset {DYNAMO_OPSET} or newer, "
            "or onnx.exporter torchscript.") from exc
    for node in converted.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        older = onnx.defs.get_schema(node.op_type, opset, "").attributes
        newer = onnx.defs.get_schema(node.op_type, DYNAMO_OPSET, "").attributes
        for attribute in list(node.attribute):
            default = newer.get(attribute.name)
            if (attribute.name not in older and default is not None and default.default_value.name
                    and helper.get_attribute_value(default.default_value) == helper.get_attribute_value(attribute)):
                node.attribute.remove(attribute)
    return converted
