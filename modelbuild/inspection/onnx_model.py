"""Describe an ONNX file: opsets, inputs and outputs with element types and (symbolic) dims, node histogram."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.inspection.common import ACCEPTED, InspectError, op_histogram


def describe_onnx(path: Path) -> dict[str, Any]:
    """The description of an .onnx file, read without loading its external weight data."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises several unrelated types on garbage input
        raise InspectError(f"Cannot read {path} as an ONNX model ({type(err).__name__}: {err}); "
                           f"inspect accepts a valid {ACCEPTED} file.") from err
    if not model.HasField("graph"):
        raise InspectError(f"Cannot read {path} as an ONNX model: it holds no graph; "
                           f"inspect accepts a valid {ACCEPTED} file.")
    graph = model.graph
    initializer_names = {tensor.name for tensor in graph.initializer}
    description: dict[str, Any] = {
        "format": "onnx",
        "ir_version": model.ir_version,
        "opsets": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
        "inputs": [_value_info(v) for v in graph.input if v.name not in initializer_names],
        "outputs": [_value_info(v) for v in graph.output],
        "ops": op_histogram("nodes", _node_op_types(graph)),
        "initializers": len(graph.initializer),
        "parameters": sum(_element_count(tensor.dims) for tensor in graph.initializer),
        "metadata": _metadata(model),
    }
    external = _external_data_files(path, graph.initializer)
    if external:
        description["external_data_bytes"] = sum(f.stat().st_size for f in external if f.is_file())
    return description


def _value_info(value: Any) -> dict[str, Any]:
    feature = {"name": value.name, **_type_info(value.type)}
    if value.doc_string:
        feature["description"] = value.doc_string
    return feature


def _type_info(onnx_type: Any) -> dict[str, Any]:
    import onnx

    kind = onnx_type.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        tensor = getattr(onnx_type, kind)
        info: dict[str, Any] = {"type": "tensor" if kind == "tensor_type" else "sparse_tensor",
                                "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type)}
        info["shape"] = [_dim(d) for d in tensor.shape.dim] if tensor.HasField("shape") else None
        return info
    if kind == "sequence_type":
        return {"type": "sequence", "element": _type_info(onnx_type.sequence_type.elem_type)}
    if kind == "optional_type":
        return {"type": "optional", "element": _type_info(onnx_type.optional_type.elem_type)}
    if kind == "map_type":
        return {"type": "map", "key_dtype": onnx.TensorProto.DataType.Name(onnx_type.map_type.key_type),
                "value": _type_info(onnx_type.map_type.value_type)}
    return {"type": kind or "unknown"}


def _dim(dim: Any) -> int | str | None:
    """A dimension: its size, its symbolic name, or None when neither is known."""
    kind = dim.WhichOneof("value")
    return dim.dim_value if kind == "dim_value" else dim.dim_param if kind == "dim_param" else None


def _node_op_types(graph: Any) -> list[str]:
    """Op types of every node, including the nodes of subgraphs (If, Loop, Scan bodies)."""
    op_types = []
    for node in graph.node:
        domain = "" if node.domain in ("", "ai.onnx") else f"{node.domain}."
        op_types.append(domain + node.op_type)
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else list(attribute.graphs)
            for subgraph in subgraphs:
                op_types.extend(_node_op_types(subgraph))
    return op_types


def _metadata(model: Any) -> dict[str, Any]:
    fields = {
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
        "domain": model.domain,
        "model_version": model.model_version or "",
        "doc_string": model.doc_string,
        "graph_name": model.graph.name,
    }
    metadata: dict[str, Any] = {key: value for key, value in fields.items() if value}
    if model.metadata_props:
        metadata["metadata_props"] = {prop.key: prop.value for prop in model.metadata_props}
    return metadata


def _external_data_files(path: Path, initializers: Any) -> set[Path]:
    import onnx

    files = set()
    for tensor in initializers:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            if "location" in entries:
                files.add(path.parent / entries["location"])
    return files


def _element_count(dims: Any) -> int:
    count = 1
    for size in dims:
        count *= size
    return count

