"""Carry out a variant's `compression` section on a converted MLModel.

Activations first (calibrated on the uncompressed model), then the weight steps of
`modelbuild.surgery.coreml_weights` (prune, palettize, quantize; later ones compress
jointly). coremltools calibrates activations by running the model with Core ML, which
only exists on macOS; here the reference runtime (`modelbuild.runtime`) runs it, on
every platform, and coremltools' own passes insert the quantize/dequantize pairs.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from modelbuild.recipe.compression import ActivationQuantization, Compression


def compress(mlmodel: Any, compression: Compression, calibration: list[dict[str, Any]] | None = None) -> Any:
    """The compressed model; `calibration`: input sets for `predict` (needed for activations and
    calibrated palettes, which are measured on the uncompressed model)."""
    if compression.calibrated and not calibration:
        raise ValueError(f"{compression.kind} needs calibration inputs (the validation samples)")
    importance = None
    if compression.palettize is not None and compression.palettize.calibrated:
        from modelbuild.coreml.importance import weight_importance

        importance = weight_importance(mlmodel, calibration)
    if compression.activations is not None:
        mlmodel = quantize_activations(mlmodel, compression.activations, calibration)
    steps = compression.weight_steps()
    before = compressed_weights(mlmodel) if steps else 0
    for step in steps:
        mlmodel = step.apply(mlmodel, importance)
    if steps and compressed_weights(mlmodel) <= before:
        raise ValueError(f"compression ({compression.kind}) changed no weight: every weight has at most "
                         f"min_weight_elements ({compression.min_weight_elements}) values or is left out by "
                         "skip_ops / skip_op_types; lower compression.min_weight_elements (e.g. 0) or drop the "
                         "weight compression (`modelbuild inspect` lists the weights and their sizes)")
    return mlmodel


def compressed_weights(mlmodel: Any) -> int:
    """How many weights are stored compressed: ML Program constexpr_* ops, NeuralNetwork quantized WeightParams."""
    from modelbuild.sizes import weight_params

    spec = mlmodel.get_spec()
    if spec.WhichOneof("Type") == "mlProgram":
        return sum(op.type.startswith("constexpr_") for function in spec.mlProgram.functions.values()
                   for block in function.block_specializations.values() for op in _operations(block))
    return sum(params.HasField("quantization") for params in weight_params(spec))


def _operations(block: Any) -> Any:
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _operations(inner)


def quantize_activations(mlmodel: Any, activations: ActivationQuantization, calibration: list[dict[str, Any]]) -> Any:
    """8-bit activations with ranges measured by the reference runtime on `calibration`."""
    from unittest import mock

    from coremltools.optimize import coreml as cto
    from coremltools.optimize.coreml import _post_training_quantization as post_training

    from modelbuild.coreml.quiet import quiet_conversion

    statistics = activation_ranges(mlmodel, calibration)
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode=activations.mode))
    # coremltools measures the ranges with MLModel.predict (macOS only): hand it the runtime's instead
    with quiet_conversion(), mock.patch.object(post_training, "_get_activation_calibration_stats",
                                               lambda *args, **kwargs: statistics):
        return cto.linear_quantize_activations(mlmodel, config, [dict(feeds) for feeds in calibration])


def activation_ranges(mlmodel: Any, calibration: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{tensor name: {rmin, rmax}} over the calibration inputs: every input and every op output (not the
    model outputs), with the tensors around each concat sharing one range, as coremltools does."""
    from coremltools.optimize.coreml.experimental._post_training_quantization import (
        _adjust_concat_surrounding_activation_stats,
    )

    from modelbuild import runtime

    model = runtime.load(mlmodel, backend="reference")
    outputs = set(model.output_names)
    ranges: dict[str, dict[str, float]] = defaultdict(dict)
    for feeds in calibration:
        values = {name: np.asarray(value, np.float32) for name, value in feeds.items()}
        values.update(model.predict(feeds, intermediate=True))
        for name, value in values.items():
            if name in outputs or not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or not value.size:
                continue
            low, high = float(value.min()), float(value.max())
            seen = ranges[name]
            seen["rmin"], seen["rmax"] = min(low, seen.get("rmin", low)), max(high, seen.get("rmax", high))
    _adjust_concat_surrounding_activation_stats(_concat_groups(mlmodel.get_spec()), ranges)
    return dict(ranges)


def _concat_groups(spec: Any) -> list[list[str]]:
    """The input and output tensor names of every concat op of an ML Program."""
    groups = []
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type == "concat":
                    names = [argument.name for argument in op.inputs["values"].arguments if argument.name]
                    groups.append(names + [op.outputs[0].name])
    return groups
