"""Output shapes of an ONNX file at given input shapes, from ONNX shape inference (nothing is run).

The graph's inputs are pinned to the given shapes, every recorded output and intermediate shape
is dropped, and `onnx.shape_inference` (strict, with data propagation, so that Reshape targets
computed from Shape ops resolve) infers them again from the inputs. A graph whose output shapes
do not all come out as static sizes gives None: the caller then runs the file.
"""
from __future__ import annotations

from pathlib import Path


def inferred_output_shapes(path: Path, input_shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]] | None:
    """The static shape of each graph output, in graph order, with the graph inputs (in order) at `input_shapes`."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)  # shapes need no weights
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    graph_inputs = [value for value in graph.input if value.name not in initializers]
    if len(graph_inputs) != len(input_shapes):
        return None
    for value, shape in zip(graph_inputs, input_shapes):
        tensor_type = value.type.tensor_type
        tensor_type.ClearField("shape")
        for size in shape:
            tensor_type.shape.dim.add().dim_value = int(size)
    for value in graph.output:
        value.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception:  # an op without a shape function, or a graph inference refuses: run the file instead
        return None
    shapes = []
    for value in inferred.graph.output:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            return None
        dims = tensor_type.shape.dim
        if any(not dim.HasField("dim_value") or dim.dim_value < 0 for dim in dims):
            return None
        shapes.append(tuple(int(dim.dim_value) for dim in dims))
    return shapes
