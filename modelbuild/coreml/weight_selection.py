"""Which weights a compression touches: op names and types to skip, and a minimum size.

ML Program: an `OptimizationConfig` whose op-name and op-type entries are None for the
skipped ops (coremltools.optimize leaves their weights alone); names are globs matched
against the program's op names (a weight's const op, or the op that reads it), so
`conv_0*` keeps the first convolution as it is. NeuralNetwork: a layer selector for
coremltools' quantization utilities, matching layer names and types the same way.
An entry that matches nothing is an error that lists what is there: a typo must not
compress the layer it meant to keep.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Iterable

from modelbuild.surgery.coreml_spec import NEURAL_NETWORK_FIELDS
from modelbuild.surgery.registry import SurgeryError


def program_ops(spec: Any) -> list[tuple[str, str]]:
    """(op name, op type) of every op of an ML Program spec, nested blocks included."""
    found: list[tuple[str, str]] = []

    def walk(block: Any) -> None:
        for op in block.operations:
            name = op.attributes["name"].immediateValue.tensor.strings.values[0] if "name" in op.attributes \
                else (op.outputs[0].name if op.outputs else "")
            found.append((name, op.type))
            for nested in op.blocks:
                walk(nested)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    return found


def matching(patterns: Iterable[str], names: Iterable[str], what: str, step: str) -> list[str]:
    """The names matched by the glob `patterns`; a pattern that matches none is a SurgeryError."""
    names = list(dict.fromkeys(names))
    chosen: list[str] = []
    for pattern in patterns:
        hits = fnmatch.filter(names, pattern)
        if not hits:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise SurgeryError(f"{step}: {pattern!r} matches no {what} of the model; its {what}s are {shown} "
                               f"(`modelbuild inspect` lists them).")
        chosen += hits
    return list(dict.fromkeys(chosen))


def optimization_config(mlmodel: Any, op_config: Any, skip_ops: list[str], skip_op_types: list[str],
                        step: str) -> Any:
    """coremltools' OptimizationConfig: `op_config` everywhere except on the skipped ops."""
    from coremltools.optimize import coreml as cto

    ops = program_ops(mlmodel.get_spec())
    names = matching(skip_ops, (name for name, _ in ops), "op name", step)
    types = matching(skip_op_types, (kind for _, kind in ops if kind != "const"), "op type", step)
    return cto.OptimizationConfig(global_config=op_config, op_type_configs={kind: None for kind in types},
                                  op_name_configs={name: None for name in names})


def layer_selector(spec: Any, skip_ops: list[str], skip_op_types: list[str], minimum_elements: int,
                   step: str) -> Any:
    """A coremltools QuantizedLayerSelector for a NeuralNetwork spec: the layers with weights, minus the
    skipped names and types and the layers whose largest weight has at most `minimum_elements` values."""
    from coremltools.models.neural_network.quantization_utils import QuantizedLayerSelector

    layers = list(_layers(spec))
    names = set(matching(skip_ops, (layer.name for layer in layers), "layer name", step))
    types = set(matching(skip_op_types, (layer.WhichOneof("layer") for layer in layers), "layer type", step))

    class Selector(QuantizedLayerSelector):
        def do_quantize(self, layer: Any, **kwargs: Any) -> bool:
            kind = layer.WhichOneof("layer")
            if not super().do_quantize(layer) or layer.name in names or kind in types:
                return False
            return kind in ("loop", "branch") or largest_weight(layer) > minimum_elements

    return Selector()


def _layers(spec: Any):
    kind = spec.WhichOneof("Type")
    if kind in NEURAL_NETWORK_FIELDS:
        yield from getattr(spec, kind).layers


def largest_weight(layer: Any) -> int:
    """The number of float32 values in the layer's largest WeightParams field."""
    largest = 0
    for _, value in getattr(layer, layer.WhichOneof("layer")).ListFields():
        if getattr(value, "DESCRIPTOR", None) is not None and value.DESCRIPTOR.name == "WeightParams":
            largest = max(largest, len(value.floatValue))
    return largest
