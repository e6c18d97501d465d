"""Flexible-shape requests a route cannot support are refused before converting, with the reason and the way out.

`flexible_support_problem` is the pure check the recipe check calls; convert()
raises the same message before tracing or loading anything.
"""
from __future__ import annotations

import re

import pytest
import torch

from modelbuild.coreml import (CoreMLBuildError, Enumerated, FeatureSpec, ImageInput, ImageOutput, Range, convert,
                               flexible_support_problem)

SHAPE = (1, 3, 32, 32)
RANGE = Range((None, None, (16, 64, 32), (16, 64, 32)))
UNBOUNDED = Range((None, None, (16, -1, 32), (16, -1, 32)))
ENUMERATED = Enumerated(((1, 3, 32, 32), (1, 3, 64, 64)), default=SHAPE)
THREE_SHAPES = Enumerated(((1, 3, 32, 32), (1, 3, 48, 48), (1, 3, 64, 64)), default=SHAPE)
ARRAY_OUT = [FeatureSpec("y", SHAPE)]
IMAGE_OUT = [FeatureSpec("y", SHAPE, image=ImageOutput(scale=255.0))]


def _inputs(flexible, image: bool = False) -> list[FeatureSpec]:
    return [FeatureSpec("x", SHAPE, image=ImageInput(scale=1 / 255) if image else None, flexible=flexible)]


class _MustNotBeTraced(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model was traced although the request had to be refused first")


# (frontend, format, target, inputs, outputs) that work: the supported matrix
SUPPORTED = [
    ("torch", "neuralnetwork", "iOS14", _inputs(RANGE), ARRAY_OUT),
    ("torch", "neuralnetwork", "iOS14", _inputs(UNBOUNDED), ARRAY_OUT),
    ("torch", "neuralnetwork", "iOS14", _inputs(ENUMERATED, image=True), ARRAY_OUT),
    ("torch", "mlprogram", "iOS16", _inputs(RANGE, image=True), IMAGE_OUT),
    ("torch", "mlprogram", "iOS16", _inputs(ENUMERATED), ARRAY_OUT),
    ("onnx", "neuralnetwork", "iOS13", _inputs(RANGE, image=True), ARRAY_OUT),  # size-agnostic graphs only
    ("onnx", "neuralnetwork", "iOS13", _inputs(ENUMERATED), ARRAY_OUT),
    ("onnx", "mlprogram", "iOS15", _inputs(None), ARRAY_OUT),  # nothing flexible: nothing to refuse
]

REFUSED = [
    ("onnx", "mlprogram", "iOS15", _inputs(RANGE), ARRAY_OUT,
     "Flexible inputs ['x'] cannot be converted with frontend 'onnx' to format 'mlprogram': onnx2coreml refuses "
     "dynamic dimensions and an ML Program fixes every op's shape at conversion. Use frontend 'torch' (both "
     "formats), or format 'neuralnetwork' for a size-agnostic graph."),
    ("torch", "neuralnetwork", "iOS14", _inputs(RANGE, image=True), IMAGE_OUT,
     "Flexible inputs ['x'] with image outputs ['y'] need format 'mlprogram': NeuralNetwork image outputs have a "
     "fixed size. Use format 'mlprogram' (iOS15 or later), or declare the outputs as multi-arrays."),
    ("onnx", "neuralnetwork", "iOS13", _inputs(ENUMERATED), IMAGE_OUT,
     "Flexible inputs ['x'] with image outputs ['y'] need format 'mlprogram'"),
    ("torch", "mlprogram", "iOS16", _inputs(UNBOUNDED), ARRAY_OUT,
     "Inputs ['x'] have unbounded ranges (max -1); an ML Program needs a finite maximum for every range. Give a "
     "maximum, or use format 'neuralnetwork'."),
    ("torch", "mlprogram", "iOS16", _inputs(ENUMERATED) + [FeatureSpec("z", SHAPE, flexible=ENUMERATED)], ARRAY_OUT,
     "Inputs ['x', 'z'] all declare enumerated shapes; an ML Program below iOS18 allows one enumerated input "
     "(iOS16 was asked). Use ranges for the others, or iOS18."),
    ("torch", "mlprogram", "iOS18", _inputs(ENUMERATED) + [FeatureSpec("z", SHAPE, flexible=THREE_SHAPES)],
     ARRAY_OUT, "Inputs ['x', 'z'] declare different numbers of enumerated shapes [2, 3]; an ML Program needs the "
     "same number for every enumerated input (the i-th shapes go together)."),
    ("torch", "mlprogram", "iOS16", _inputs(None), [FeatureSpec("y", SHAPE, flexible=RANGE)],
     "Outputs ['y'] declare flexible shapes; declare them on the inputs only: output shapes follow from the "
     "input shapes."),
]


@pytest.mark.parametrize("frontend,format,target,inputs,outputs", SUPPORTED)
def test_supported_routes_have_no_problem(frontend, format, target, inputs, outputs):
    assert flexible_support_problem(frontend, format, inputs, outputs, target) is None


@pytest.mark.parametrize("frontend,format,target,inputs,outputs,message", REFUSED)
def test_unsupported_routes_are_refused_before_converting(frontend, format, target, inputs, outputs, message,
                                                          tmp_path):
    assert flexible_support_problem(frontend, format, inputs, outputs, target).startswith(message)
    onnx_path = tmp_path / "never_read.onnx"  # does not exist: the refusal must come first
    with pytest.raises(CoreMLBuildError, match=re.escape(message)):
        convert(frontend=frontend, onnx_path=onnx_path, torch_model=_MustNotBeTraced(), inputs=inputs,
                outputs=outputs, format=format, minimum_deployment_target=target)


def test_several_enumerated_inputs_depend_on_format_and_target():
    two_enumerated = _inputs(ENUMERATED) + [FeatureSpec("z", SHAPE, flexible=ENUMERATED)]
    assert flexible_support_problem("torch", "neuralnetwork", two_enumerated, ARRAY_OUT, "iOS13") is None
    for newer in ("iOS18", "macOS15", "iOS26", "watchOS11"):
        assert flexible_support_problem("torch", "mlprogram", two_enumerated, ARRAY_OUT, newer) is None
    for older in ("iOS17", "macOS14", "macOS10_15", "tvOS17"):
        assert "below iOS18" in flexible_support_problem("torch", "mlprogram", two_enumerated, ARRAY_OUT, older)
    assert flexible_support_problem("torch", "mlprogram", two_enumerated, ARRAY_OUT) is None  # no target: unchecked


@pytest.mark.parametrize("feature,message", [
    (FeatureSpec("x", SHAPE, flexible=Range(((16, 64, 32), (16, 64, 32)))),
     "Input 'x' has 2 dimension ranges for a shape of rank 4 (1, 3, 32, 32): give one (min, max, default) or None"),
    (FeatureSpec("x", SHAPE, flexible=Range((None, None, None, None))),
     "Input 'x' has a Range with every dimension fixed (None); give at least one range."),
    (FeatureSpec("x", SHAPE, flexible=Range((None, None, (64, 16, 32), None))),
     "Input 'x' dimension 2 has range (64, 16, 32); it needs 1 <= min <= default <= max (max -1 for unbounded)."),
    (FeatureSpec("x", SHAPE, flexible=Range((None, None, (16, 64, 48), None))),
     "Input 'x' dimension 2 has default 48 but the shape (1, 3, 32, 32) says 32; the shape must be the default"),
    (FeatureSpec("x", SHAPE, flexible=Range((None, None, (16, 64), None))),
     "Input 'x' dimension 2 has range (16, 64); give three integers (min, max, default)."),
    (FeatureSpec("x", SHAPE, flexible=Enumerated((SHAPE,), SHAPE)),
     "Input 'x' enumerates [(1, 3, 32, 32)]; give at least two different shapes."),
    (FeatureSpec("x", SHAPE, flexible=Enumerated((SHAPE, (1, 3, 64)), SHAPE)),
     "Input 'x' enumerates shape (1, 3, 64); every shape needs 4 positive integers."),
    (FeatureSpec("x", SHAPE, flexible=Enumerated((SHAPE, (1, 3, 64, 64)), (1, 3, 64, 64))),
     "Input 'x' has default (1, 3, 64, 64) and shape (1, 3, 32, 32); the default must be one of the enumerated"),
    (FeatureSpec("x", SHAPE, image=ImageInput(), flexible=Range(((1, 4, 1), None, (16, 64, 32), None))),
     "Image input 'x' may only vary in height and width (dimensions 2 and 3)"),
    (FeatureSpec("x", SHAPE, image=ImageInput(), flexible=Enumerated((SHAPE, (2, 3, 32, 32)), SHAPE)),
     "Image input 'x' may only vary in height and width (dimensions 2 and 3)"),
    (FeatureSpec("x", SHAPE, flexible=(16, 64)),
     "Input 'x' has flexible=(16, 64); give a modelbuild.coreml.Range or Enumerated, or None."),
])
def test_inconsistent_declarations_are_refused(feature, message):
    with pytest.raises(CoreMLBuildError, match=re.escape(message)):
        convert(frontend="torch", torch_model=_MustNotBeTraced(), inputs=[feature], outputs=ARRAY_OUT,
                format="neuralnetwork", minimum_deployment_target="iOS14")
