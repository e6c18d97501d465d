"""Flexible input shapes: declarations, which routes support them, and how each route gets them.

A `FeatureSpec` input may carry `flexible=Range(...)` (per dimension a
(min, max, default) range, max -1 = unbounded, None = fixed) or
`flexible=Enumerated(...)` (a list of allowed shapes and the default one). The
feature's `shape` is the default shape: models are traced and exported at it.

Routes, as measured on this stack (coremltools 9.0, onnx2coreml 1.1.0):
- torch frontend: the declaration becomes ct.RangeDim / ct.EnumeratedShapes on
  the traced model, so shapes are computed in the graph; works for both formats
  when the graph avoids rank-6 reshapes. NeuralNetwork iOS13 also refuses
  graphs whose `expand` becomes a dynamic `tile` (an iOS14 layer).
- onnx frontend: onnx2coreml refuses dynamic dimensions, so the model is
  converted at the default shape (dynamic axes of the ONNX file are set to
  it) and the NeuralNetwork spec is declared flexible afterwards. That is
  only correct for graphs whose layers do not bake the default size in (a
  Reshape to a constant shape crashes or computes garbage at any other
  size: the FFDNet write-up's crash), so every ONNX node must be a
  size-agnostic op. An ML Program fixes every op's shape at conversion:
  refused.
- image outputs of a flexible model need an ML Program (NeuralNetwork image
  outputs have a fixed size).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from modelbuild.coreml.errors import CoreMLBuildError

if TYPE_CHECKING:
    from modelbuild.coreml.features import FeatureSpec

DimRange = tuple[int, int, int]  # (min, max, default); max -1 = unbounded


@dataclass(frozen=True)
class Range:
    """Per dimension a (min, max, default) range, or None for a fixed dimension."""

    dim_ranges: tuple[DimRange | None, ...]


@dataclass(frozen=True)
class Enumerated:
    """The input accepts exactly these shapes; `default` is one of them."""

    shapes: tuple[tuple[int, ...], ...]
    default: tuple[int, ...]


Flexible = Union[Range, Enumerated]

# ONNX ops whose Core ML layers work at any spatial size once converted at one size
SIZE_AGNOSTIC_ONNX_OPS = frozenset({
    "Abs", "Add", "AveragePool", "BatchNormalization", "Clip", "Conv", "ConvTranspose", "Div", "Dropout", "Elu",
    "Exp", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "Identity", "InstanceNormalization", "LeakyRelu",
    "Log", "Max", "MaxPool", "Min", "Mul", "Neg", "PRelu", "Pow", "Reciprocal", "Relu", "Selu", "Sigmoid",
    "Softplus", "Sqrt", "Sub", "Tanh",
})
_BINARY_ONNX_OPS = frozenset({"Add", "Div", "Max", "Min", "Mul", "Pow", "Sub", "PRelu"})


def check_flexible(feature: "FeatureSpec", role: str) -> None:
    """Raise CoreMLBuildError unless `feature.flexible` is a consistent declaration for its shape."""
    flexible = feature.flexible
    if flexible is None:
        return
    if role != "input":
        return  # refused by flexible_support_problem, which names every such output
    where = f"{role.capitalize()} {feature.name!r}"
    shape = tuple(feature.shape)
    if isinstance(flexible, Range):
        _check_range(where, shape, flexible)
    elif isinstance(flexible, Enumerated):
        _check_enumerated(where, shape, flexible)
    else:
        raise CoreMLBuildError(
            f"{where} has flexible={flexible!r}; give a modelbuild.coreml.Range or Enumerated, or None."
        )
    if feature.image is not None and _varies_batch_or_channels(shape, flexible):
        raise CoreMLBuildError(
            f"Image {role} {feature.name!r} may only vary in height and width (dimensions 2 and 3); "
            f"its flexible declaration {flexible!r} changes the batch or channel dimension."
        )


def _check_range(where: str, shape: tuple[int, ...], flexible: Range) -> None:
    ranges = tuple(flexible.dim_ranges)
    if len(ranges) != len(shape):
        raise CoreMLBuildError(
            f"{where} has {len(ranges)} dimension ranges for a shape of rank {len(shape)} {shape!r}: "
            "give one (min, max, default) or None per dimension."
        )
    if all(r is None for r in ranges):
        raise CoreMLBuildError(f"{where} has a Range with every dimension fixed (None); give at least one range.")
    for index, (size, dim) in enumerate(zip(shape, ranges)):
        if dim is None:
            continue
        if len(dim) != 3 or not all(isinstance(v, int) for v in dim):
            raise CoreMLBuildError(
                f"{where} dimension {index} has range {dim!r}; give three integers (min, max, default)."
            )
        low, high, default = dim
        if not (1 <= low <= default and (high == -1 or default <= high)):
            raise CoreMLBuildError(
                f"{where} dimension {index} has range {dim!r}; it needs 1 <= min <= default <= max "
                "(max -1 for unbounded)."
            )
        if default != size:
            raise CoreMLBuildError(
                f"{where} dimension {index} has default {default} but the shape {shape!r} says {size}; "
                "the shape must be the default shape."
            )


def _check_enumerated(where: str, shape: tuple[int, ...], flexible: Enumerated) -> None:
    shapes = [tuple(s) for s in flexible.shapes]
    if len(shapes) < 2 or len(set(shapes)) != len(shapes):
        raise CoreMLBuildError(f"{where} enumerates {shapes!r}; give at least two different shapes.")
    for candidate in shapes:
        if len(candidate) != len(shape) or not all(isinstance(d, int) and d >= 1 for d in candidate):
            raise CoreMLBuildError(
                f"{where} enumerates shape {candidate!r}; every shape needs {len(shape)} positive integers."
            )
    if tuple(flexible.default) not in shapes or tuple(flexible.default) != shape:
        raise CoreMLBuildError(
            f"{where} has default {tuple(flexible.default)!r} and shape {shape!r}; the default must be one of "
            f"the enumerated shapes and equal to the shape."
        )


def _varies_batch_or_channels(shape: tuple[int, ...], flexible: Flexible) -> bool:
    if isinstance(flexible, Range):
        return any(dim is not None and tuple(dim[:2]) != (size, size)
                   for size, dim in zip(shape[:2], flexible.dim_ranges))
    return any(tuple(s[:2]) != shape[:2] for s in flexible.shapes)


def flexible_support_problem(frontend: str, format: str, inputs: list["FeatureSpec"], outputs: list["FeatureSpec"],
                             minimum_deployment_target: str | None = None) -> str | None:
    """Why this route cannot give these inputs flexible shapes (and what would), or None if it can.

    Pure: it looks at the declarations only. The onnx route additionally needs
    a size-agnostic graph, which `onnx_graph_problem` checks on the ONNX file.
    """
    flexible = [f for f in inputs if f.flexible is not None]
    declared_on_outputs = [f.name for f in outputs if f.flexible is not None]
    if declared_on_outputs:
        return (f"Outputs {declared_on_outputs} declare flexible shapes; declare them on the inputs only: output "
                "shapes follow from the input shapes.")
    if not flexible:
        return None
    names = [f.name for f in flexible]
    if frontend == "onnx" and format == "mlprogram":
        return (f"Flexible inputs {names} cannot be converted with frontend 'onnx' to format 'mlprogram': "
                "onnx2coreml refuses dynamic dimensions and an ML Program fixes every op's shape at conversion. "
                "Use frontend 'torch' (both formats), or format 'neuralnetwork' for a size-agnostic graph.")
    unbounded = [f.name for f in flexible if isinstance(f.flexible, Range)
                 and any(dim is not None and dim[1] == -1 for dim in f.flexible.dim_ranges)]
    if format == "mlprogram" and unbounded:
        return (f"Inputs {unbounded} have unbounded ranges (max -1); an ML Program needs a finite maximum for "
                "every range. Give a maximum, or use format 'neuralnetwork'.")
    image_outputs = [f.name for f in outputs if f.image is not None]
    if format == "neuralnetwork" and image_outputs:
        return (f"Flexible inputs {names} with image outputs {image_outputs} need format 'mlprogram': "
                "NeuralNetwork image outputs have a fixed size. Use format 'mlprogram' (iOS15 or later), "
                "or declare the outputs as multi-arrays.")
    enumerated = [f for f in flexible if isinstance(f.flexible, Enumerated)]
    if format == "mlprogram" and len(enumerated) > 1 and minimum_deployment_target is not None:
        names = [f.name for f in enumerated]
        if not _spec9_or_later(minimum_deployment_target):
            return (f"Inputs {names} all declare enumerated shapes; an ML Program below iOS18 allows one "
                    f"enumerated input ({minimum_deployment_target} was asked). Use ranges for the others, "
                    "or iOS18.")
        if len({len(f.flexible.shapes) for f in enumerated}) > 1:
            return (f"Inputs {names} declare different numbers of enumerated shapes "
                    f"{[len(f.flexible.shapes) for f in enumerated]}; an ML Program needs the same number for "
                    "every enumerated input (the i-th shapes go together).")
    return None


_SPEC9_MAJOR = {"iOS": 18, "tvOS": 18, "macOS": 15, "watchOS": 11}  # iOS18 and equivalents (spec version 9)


def _spec9_or_later(target: str) -> bool:
    """Whether a deployment target name (iOS18, macOS15, iOS26, ...) is iOS18-equivalent or newer."""
    for platform, major in _SPEC9_MAJOR.items():
        version = target[len(platform):].split("_")[0]
        if target.startswith(platform) and version.isdigit():
            return int(version) >= major
    return False


def check_route(frontend: str, format: str, inputs: list["FeatureSpec"], outputs: list["FeatureSpec"],
                minimum_deployment_target: str, onnx_path: Path | None) -> None:
    """Raise CoreMLBuildError before converting if the route cannot give the declared flexibility."""
    problem = flexible_support_problem(frontend, format, inputs, outputs, minimum_deployment_target)
    if problem is None and frontend == "onnx" and onnx_path is not None and any(f.flexible for f in inputs):
        problem = onnx_graph_problem(Path(onnx_path))
    if problem is not None:
        raise CoreMLBuildError(problem)


def onnx_graph_problem(onnx_path: Path) -> str | None:
    """Why the ONNX graph cannot be converted at one size and run at others, or None if it can."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    if not onnx_path.is_file():
        return None  # the frontend names the missing file
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    constants = {t.name: tuple(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            constants[node.output[0]] = tuple(numpy_helper.to_array(node.attribute[0].t).shape)
    size_bound = sorted({node.op_type for node in graph.node
                         if node.op_type not in SIZE_AGNOSTIC_ONNX_OPS and node.op_type != "Constant"})
    for node in graph.node:
        if node.op_type in _BINARY_ONNX_OPS:
            for name in node.input:
                shape = constants.get(name)
                if shape and int(np.prod(shape[-2:])) != 1:
                    size_bound.append(f"{node.op_type} with a constant of shape {list(shape)}")
    if not size_bound:
        return None
    return (f"Flexible shapes with frontend 'onnx' need a graph that works at any size once converted at the "
            f"default shape (onnx2coreml refuses dynamic dimensions), but {str(onnx_path)!r} has "
            f"{', '.join(size_bound)}, which fix the default size in the converted layers. "
            "Use frontend 'torch', which computes shapes in the graph.")


def ct_shape(ct, feature: "FeatureSpec") -> Any:
    """The coremltools shape of `feature`: a tuple, a ct.Shape of RangeDims or ct.EnumeratedShapes."""
    flexible = feature.flexible
    if isinstance(flexible, Range):
        return ct.Shape(shape=[
            size if dim is None else ct.RangeDim(lower_bound=dim[0], upper_bound=dim[1], default=dim[2])
            for size, dim in zip(feature.shape, flexible.dim_ranges)
        ])
    if isinstance(flexible, Enumerated):
        return ct.EnumeratedShapes(shapes=[tuple(s) for s in flexible.shapes], default=tuple(flexible.default))
    return tuple(feature.shape)


def make_spec_flexible(spec: Any, inputs: list["FeatureSpec"]) -> None:
    """Declare the flexible inputs in a NeuralNetwork spec converted at the default shapes.

    Writes the feature types' `ShapeFlexibility` / `SizeFlexibility` directly
    (coremltools' flexible_shape_utils only knows rank-1 and rank-3 arrays).
    """
    described = {feature.name: feature for feature in spec.description.input}
    for feature in inputs:
        flexible = feature.flexible
        if flexible is None:
            continue
        feature_type = described[feature.name].type
        if feature.image is not None:
            image = feature_type.imageType
            image.ClearField("SizeFlexibility")
            if isinstance(flexible, Range):
                for size_range, size, dim in ((image.imageSizeRange.heightRange, feature.shape[2],
                                               flexible.dim_ranges[2]),
                                              (image.imageSizeRange.widthRange, feature.shape[3],
                                               flexible.dim_ranges[3])):
                    size_range.lowerBound, size_range.upperBound = _bounds(dim, size)
            else:
                for shape in flexible.shapes:
                    image.enumeratedSizes.sizes.add(height=shape[2], width=shape[3])
            continue
        array = feature_type.multiArrayType
        array.ClearField("ShapeFlexibility")
        if isinstance(flexible, Range):
            for size, dim in zip(feature.shape, flexible.dim_ranges):
                low, high = _bounds(dim, size)
                array.shapeRange.sizeRanges.add(lowerBound=low, upperBound=high)
        else:
            for shape in flexible.shapes:
                array.enumeratedShapes.shapes.add().shape.extend(shape)


def _bounds(dim: DimRange | None, size: int) -> tuple[int, int]:
    return (size, size) if dim is None else (dim[0], dim[1])
