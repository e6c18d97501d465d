"""Activation quantization of a converted MLModel, calibrated by the reference runtime.

coremltools calibrates activations by running the model with Core ML, which only exists on
macOS; here the reference runtime (`modelbuild.runtime`) measures the ranges, on every
platform, and coremltools' own passes insert the quantize/dequantize pairs. A variant's
`compression` section is carried out by `modelbuild.recipe.compression.compress`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any
from unittest import mock

import numpy as np

from modelbuild import runtime
from modelbuild.coreml.quiet import quiet_conversion
from modelbuild.sizes import weight_params


def quantize_activations(mlmodel: Any, mode: str, calibration: list[dict[str, Any]]) -> Any:
    """8-bit activations (`mode`: linear_symmetric or linear) with ranges measured by the reference runtime on
    `calibration`."""
    from coremltools.optimize import coreml as cto
    from coremltools.optimize.coreml import _post_training_quantization as post_training

    statistics = activation_ranges(mlmodel, calibration)
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode=mode))
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


def compressed_weights(mlmodel: Any) -> int:
    """How many weights are stored compressed: ML Program constexpr_* ops, NeuralNetwork quantized WeightParams."""
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
