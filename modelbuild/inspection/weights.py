"""What each weight of a Core ML model is stored as: float32, float16, or its compressed form.

ML Program: every weight made by constexpr_* ops (palettes, linear or blockwise quantization,
sparse masks, and their joint chains) is listed with its shape and form; plain const weights
are only counted. NeuralNetwork: every layer's WeightParams with its storage (float32,
float16, n-bit linear quantization per tensor or channel, n-bit lookup table).
"""
from __future__ import annotations

import math
from typing import Any

from modelbuild.inspection.common import NEURAL_NETWORK_TYPES
from modelbuild.sizes import weight_params


def weight_forms(spec: Any) -> list[dict[str, Any]]:
    """[{name, shape, form}] of the model's compressed (ML Program) or stored (NeuralNetwork) weights."""
    model_type = spec.WhichOneof("Type")
    if model_type == "mlProgram":
        return _program_weights(spec.mlProgram)
    if model_type in NEURAL_NETWORK_TYPES:
        return _network_weights(getattr(spec, model_type))
    return []


def _program_weights(program: Any) -> list[dict[str, Any]]:
    found = []
    for function in program.functions.values():
        operations = function.block_specializations[function.opset].operations
        made_by = {op.outputs[0].name: op for op in operations if op.type.startswith("constexpr_")}
        read_by_constexpr = {name for op in made_by.values() for name in _input_names(op)}
        for name, op in made_by.items():
            if name in read_by_constexpr:
                continue  # an inner part of a joint chain
            chain = [op]
            while any(source in made_by for source in _input_names(chain[0])):
                chain.insert(0, made_by[next(s for s in _input_names(chain[0]) if s in made_by)])
            dims = [d.constant.size for d in op.outputs[0].type.tensorType.dimensions]
            found.append({"name": name, "shape": dims, "form": " + ".join(_op_form(step, dims) for step in chain)})
    return found


def _input_names(op: Any) -> list[str]:
    return [argument.name for bound in op.inputs.values() for argument in bound.arguments if argument.name]


def _operand(op: Any, name: str) -> tuple[str, list[int]] | None:
    """(data type name, dims) of an operand given inline, as an attribute (iOS16) or by type."""
    from coremltools.proto import MIL_pb2

    value = None
    if name in op.inputs and op.inputs[name].arguments:
        value = op.inputs[name].arguments[0].value if op.inputs[name].arguments[0].HasField("value") else None
    elif name in op.attributes:
        value = op.attributes[name]
    if value is None:
        return None
    tensor = value.type.tensorType
    return MIL_pb2.DataType.Name(tensor.dataType).lower(), [d.constant.size for d in tensor.dimensions]


def _density(op: Any, dims: list[int]) -> str:
    """'50% ' when the op holds its nonzero values inline, else ''."""
    nonzero = _operand(op, "nonzero_data") or _operand(op, "indices_nonzero_data")
    if nonzero and nonzero[1] and math.prod(dims):
        return f"{nonzero[1][0] / math.prod(dims):.0%} "
    return ""


def _op_form(op: Any, dims: list[int]) -> str:
    kind = op.type.removeprefix("constexpr_")
    if kind in ("lut_to_dense", "lut_to_sparse"):
        indices = _operand(op, "indices") or _operand(op, "indices_nonzero_data")
        lut = _operand(op, "lut")
        bits = indices[0].removeprefix("uint") if indices else "?"
        tables = math.prod(lut[1][:-2]) if lut and len(lut[1]) > 2 else 1
        what = "palette" if kind == "lut_to_dense" else f"palette of the {_density(op, dims)}nonzero values"
        return f"{bits}-bit {what}" + (f", {tables} tables" if tables > 1 else "")
    if kind in ("affine_dequantize", "blockwise_shift_scale", "sparse_blockwise_shift_scale"):
        data = _operand(op, "quantized_data") or _operand(op, "data") or _operand(op, "nonzero_data")
        scale = _operand(op, "scale")
        scales = math.prod(scale[1]) if scale and scale[1] else 1
        grain = "per-tensor" if scales == 1 else "per-channel" if scales in dims else f"{scales} scales"
        of = f" of the {_density(op, dims)}nonzero values" if kind.startswith("sparse") else ""
        return f"{data[0] if data else '?'} linear{of}, {grain}"
    if kind == "sparse_to_dense":
        density = _density(op, dims)
        return f"sparse, {density}nonzero" if density else "sparse"
    if kind == "cast":
        return "cast"
    return kind


def _network_weights(network: Any) -> list[dict[str, Any]]:
    found = []
    for layer in network.layers:
        kind = layer.WhichOneof("layer")
        params = getattr(layer, kind)
        for field, value in params.ListFields():
            if getattr(value, "DESCRIPTOR", None) is not None and value.DESCRIPTOR.name == "WeightParams":
                found.append({"name": f"{layer.name}.{field.name}", "shape": [], "form": _stored_form(value)})
            else:
                found += [{"name": f"{layer.name}.{field.name}", "shape": [], "form": _stored_form(w)}
                          for w in (weight_params(value) if field.type == field.TYPE_MESSAGE and not
                                    field.is_repeated else [])]
    return [entry for entry in found if entry["form"]]


def _stored_form(params: Any) -> str:
    quantization = params.quantization
    kind = quantization.WhichOneof("QuantizationType") if params.HasField("quantization") else None
    if kind == "linearQuantization":
        per = "per-channel" if len(quantization.linearQuantization.scale) > 1 else "per-tensor"
        return f"{quantization.numberOfBits}-bit linear, {per}"
    if kind == "lookupTableQuantization":
        return f"{quantization.numberOfBits}-bit palette"
    if len(params.floatValue):
        return "float32"
    if len(params.float16Value):
        return "float16"
    if len(params.int8RawValue):
        return "int8 linear"
    if len(params.rawValue):
        return "float32 (raw)"
    return ""
