"""Edits of a MIL program before serialisation, the same for every frontend and format.

Given: the `main` function of a MIL program as a frontend made it, with the
frontend's names (`x.1`, `var_240`, `/Clip_output_0`).
Result: the same function with
- its inputs and outputs checked against the declared shapes, in positional order;
- inputs and outputs renamed to the declared names (an internal value that
  already carries one of those names is renamed out of the way first);
- for every image input with a `channel_scale`, a `mul` by it right after
  the input (Core ML's own preprocessing has one scale for all channels);
- for every image output whose batch/channel size came out symbolic (flexible
  inputs), a `reshape` that pins them to (1, C);
- for every image output, the deprocessing pixel = scale * tensor + bias
  appended as `mul`/`add` ops (Core ML never rescales image outputs);
- the Core ML input/output types (`ImageType` / float32 `TensorType`) that
  coremltools' backends turn into `imageType` features and, for image inputs,
  NeuralNetwork `preprocessing` or ML Program `mul`/`add` ops.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.features import (FeatureSpec, ImageInput, ImageOutput, channel_biases, channel_scales,
                                        coreml_array_type)
from modelbuild.coreml.flexible import ct_shape

DEPROCESS_SCOPE = "modelbuild_image_output"
CHANNEL_SCALE_SCOPE = "modelbuild_image_input"


def edit_scopes(func: Any, label: str) -> list[Any]:
    """The scope infos an op added by modelbuild needs (coremltools checks the frontend's scopes).

    A torch.export program's debug-handle scope holds integers: an added op has none (None),
    as the ops coremltools adds itself.
    """
    from coremltools.converters.mil.mil.scope import ScopeInfo, ScopeSource

    return [ScopeInfo(source=source, data=[None] if source == ScopeSource.EXIR_DEBUG_HANDLE else [label])
            for source in func._essential_scope_sources]


def main_function(program: Any) -> Any:
    """The program's `main` function (the only one a converted model has)."""
    if "main" not in program.functions:
        raise CoreMLBuildError(f"The MIL program has no 'main' function (it has {sorted(program.functions)}).")
    return program.functions["main"]


def check_signature(func: Any, inputs: list[FeatureSpec], outputs: list[FeatureSpec]) -> None:
    """Raise CoreMLBuildError unless the function has the declared inputs and outputs, in order.

    Symbolic dimensions (flexible inputs, and what follows from them) are
    accepted where the declaration is flexible; elsewhere sizes must match.
    """
    actual = {"input": [(name, var) for name, var in func.inputs.items()],
              "output": [(var.name, var) for var in func.outputs]}
    any_flexible = any(f.flexible is not None for f in inputs)
    for role, declared in (("input", inputs), ("output", outputs)):
        found = actual[role]
        if len(found) != len(declared):
            raise CoreMLBuildError(
                f"The converted model has {len(found)} {role}(s) {[name for name, _ in found]} but "
                f"{len(declared)} were declared {[f.name for f in declared]}; declare them all, "
                "in the model's positional order."
            )
        for (name, var), feature in zip(found, declared):
            shape = tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in var.shape)
            may_vary = feature.flexible is not None or (role == "output" and any_flexible)
            if not _shape_matches(shape, tuple(feature.shape), may_vary):
                raise CoreMLBuildError(
                    f"{role.capitalize()} {feature.name!r} was declared with shape {tuple(feature.shape)!r} "
                    f"but the converted model's {role} {name!r} has shape {shape!r}."
                )


def _shape_matches(shape: tuple, declared: tuple[int, ...], may_vary: bool) -> bool:
    if not may_vary:
        return shape == declared
    return len(shape) == len(declared) and all(not isinstance(d, int) or d == e for d, e in zip(shape, declared))


def _walk_vars(block: Any) -> Iterator[Any]:
    for op in block.operations:
        for nested in op.blocks:
            yield from nested.inputs
            yield from _walk_vars(nested)
        yield from op.outputs


def rename_features(func: Any, input_names: list[str], output_names: list[str]) -> None:
    """Give the function's inputs and outputs these names, by position."""
    input_vars = list(func.inputs.values())
    output_vars = list(func.outputs)
    wanted = {id(var): name for var, name in zip(input_vars + output_vars, input_names + output_names)}
    if len(set(wanted.values())) != len(wanted):
        raise CoreMLBuildError(
            f"Inputs {input_names} and outputs {output_names} share a name, or one output is "
            "returned twice; every Core ML feature needs its own name."
        )
    all_vars = input_vars + list(_walk_vars(func))
    taken = {var.name for var in all_vars} | set(wanted.values())
    for var in all_vars:  # move internal values off the names we need
        if id(var) not in wanted and var.name in wanted.values():
            var.set_name(_fresh_name(var.name, taken))
    placeholders, renamed_inputs = OrderedDict(), OrderedDict()
    for (old_name, var), new_name in zip(list(func.inputs.items()), input_names):
        placeholder = func.placeholder_inputs[old_name]
        placeholder.set_name(new_name)  # renames `var` too
        placeholders[new_name], renamed_inputs[new_name] = placeholder, var
    func.placeholder_inputs = placeholders
    func._input_dict = renamed_inputs
    for var, new_name in zip(output_vars, output_names):
        var.set_name(new_name)


def _fresh_name(name: str, taken: set[str]) -> str:
    index = 1
    while f"{name}_internal{index}" in taken:
        index += 1
    taken.add(f"{name}_internal{index}")
    return f"{name}_internal{index}"


def append_deprocessing(func: Any, outputs: list[FeatureSpec]) -> None:
    """Append pixel = scale * tensor + bias to every image output (the output keeps its name)."""
    from coremltools.converters.mil import Builder as mb

    scopes = edit_scopes(func, DEPROCESS_SCOPE)
    input_vars = set(map(id, func.inputs.values()))
    new_outputs = []
    for var, feature in zip(list(func.outputs), outputs):
        image = feature.image
        bias = np.array(channel_biases(image), dtype=np.float32) if isinstance(image, ImageOutput) else None
        if bias is None or (image.scale == 1 and not np.any(bias)):
            new_outputs.append(var)
            continue
        name = var.name
        if id(var) not in input_vars:
            var.set_name(f"{name}_before_deprocessing")
        with func, mb.scope(*scopes):
            result = var
            if image.scale != 1:
                result = mb.mul(x=result, y=np.float32(image.scale), name=f"{name}_deprocess_scale")
            if np.any(bias):
                uniform = bool(np.all(bias == bias[0]))
                result = mb.add(x=result, y=np.float32(bias[0]) if uniform else bias.reshape(1, -1, 1, 1),
                                name=f"{name}_deprocess_bias")
        result.set_name(name)
        new_outputs.append(result)
    func.set_outputs(new_outputs)


def scale_channels(func: Any, inputs: list[FeatureSpec]) -> None:
    """Multiply every image input with a `channel_scale` by it, per channel, before anything else.

    Core ML's image preprocessing (scale * pixel + bias) has one scale for all
    channels; this `mul` by a (1, C, 1, 1) constant completes it to
    (scale * pixel + bias[c]) * channel_scale[c]. Every use of the input,
    except the new `mul`, is rewired to the product.
    """
    from coremltools.converters.mil import Builder as mb

    scopes = edit_scopes(func, CHANNEL_SCALE_SCOPE)
    for feature in inputs:
        image = feature.image
        if not isinstance(image, ImageInput) or image.channel_scale is None:
            continue
        var = func.inputs[feature.name]
        factors = np.array(channel_scales(image), dtype=np.float32).reshape(1, -1, 1, 1)
        first_op = func.operations[0] if func.operations else None
        with func, mb.scope(*scopes):
            scaled = mb.mul(x=var, y=factors, name=f"{feature.name}_channel_scale", before_op=first_op)
        func.replace_uses_of_var_after_op(anchor_op=scaled.op, old_var=var, new_var=scaled)


def pin_image_output_shapes(func: Any, outputs: list[FeatureSpec]) -> None:
    """Give image outputs of unknown batch/channel size the static (1, C) they must have.

    With flexible inputs, shape arithmetic (an `expand` lowered to a dynamic
    `tile`, say) can leave an output's batch size symbolic, which coremltools
    refuses for an image output. A `reshape` to (1, C, height, width), with
    height and width read from the value, pins it.
    """
    from coremltools.converters.mil import Builder as mb

    scopes = edit_scopes(func, DEPROCESS_SCOPE)
    new_outputs = []
    for var, feature in zip(list(func.outputs), outputs):
        channels = int(feature.shape[1]) if feature.image is not None else None
        if channels is None or tuple(var.shape[:2]) == (1, channels):
            new_outputs.append(var)
            continue
        name = var.name
        var.set_name(f"{name}_unpinned")
        with func, mb.scope(*scopes):
            size = mb.slice_by_index(x=mb.shape(x=var), begin=[2], end=[4], name=f"{name}_size")
            target = mb.concat(values=[np.array([1, channels], dtype=np.int32), size], axis=0, name=f"{name}_shape")
            pinned = mb.reshape(x=var, shape=target, name=name)
        new_outputs.append(pinned)
    func.set_outputs(new_outputs)


def io_types(ct, inputs: list[FeatureSpec], outputs: list[FeatureSpec], *,
             flexible: bool = True) -> tuple[list[Any], list[Any]]:
    """coremltools input and output types: ImageType for images, float32 TensorType otherwise.

    `flexible=False` declares every input at its default shape (for a program
    converted at fixed shapes, made flexible in the spec afterwards).
    """
    input_types = []
    for feature in inputs:
        image = feature.image
        shape = ct_shape(ct, feature) if flexible else tuple(feature.shape)
        if isinstance(image, ImageInput):
            biases = channel_biases(image)
            input_types.append(ct.ImageType(
                name=feature.name, shape=shape, scale=float(image.scale),
                bias=biases[0] if image.color_layout == "GRAYSCALE" else list(biases),
                color_layout=_color_layout(ct, image.color_layout), channel_first=True,
            ))
        else:
            input_types.append(ct.TensorType(name=feature.name, shape=shape, dtype=numpy_array_type(feature)))
    output_types = [
        ct.ImageType(name=feature.name, color_layout=_color_layout(ct, feature.image.color_layout))
        if isinstance(feature.image, ImageOutput)
        else ct.TensorType(name=feature.name, dtype=np.float32)
        for feature in outputs
    ]
    return input_types, output_types


def numpy_array_type(feature: FeatureSpec) -> type:
    """The numpy type coremltools takes for an input's Core ML multi-array type."""
    return {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32}[coreml_array_type(feature.dtype)]


def _color_layout(ct, layout: str) -> Any:
    return {"RGB": ct.colorlayout.RGB, "BGR": ct.colorlayout.BGR, "GRAYSCALE": ct.colorlayout.GRAYSCALE}[layout]
