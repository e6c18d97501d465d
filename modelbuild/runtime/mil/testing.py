"""Build a small MIL program, convert it to an ML Program (.mlpackage) and run it in the runtime.

For tests and for checking a kernel by hand:

    from modelbuild.runtime.mil.testing import mb, run_mil
    y = run_mil(lambda x: mb.relu(x=x), {"x": np.ones((1, 3), np.float32)})
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator
from unittest import mock

import numpy as np

from modelbuild.runtime.quiet import quiet_coremltools

ct = quiet_coremltools()

from coremltools.converters.mil import Builder as mb  # noqa: E402

from .program import Program  # noqa: E402

_TARGETS = {"iOS15": ct.target.iOS15, "iOS16": ct.target.iOS16, "iOS17": ct.target.iOS17, "iOS18": ct.target.iOS18}


@contextmanager
def _no_full_gc() -> Iterator[None]:
    """ct.convert ends with gc.collect(), 0.3 s with torch loaded: skip it while converting."""
    with mock.patch("gc.collect", return_value=0):
        yield


def to_mlmodel(mil_program: Any, *, target: str = "iOS16", fp16: bool = False, passes: bool = False) -> Any:
    """Convert a `@mb.program` to an mlprogram (.mlpackage): coremltools' MLModel.

    `passes=False` keeps the ops as written (coremltools' default pipeline would
    fold and fuse them); fp16=True casts the program to fp16 as Core ML does.
    """
    with _no_full_gc():
        return ct.convert(
            mil_program,
            convert_to="mlprogram",
            minimum_deployment_target=_TARGETS[target],
            compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
            pass_pipeline=ct.PassPipeline.DEFAULT if passes or fp16 else ct.PassPipeline.EMPTY,
        )


def to_program(mil_program: Any, *, target: str = "iOS16", fp16: bool = False, passes: bool = False) -> Program:
    """Convert a `@mb.program` (see `to_mlmodel`) and load it with the runtime."""
    mlmodel = to_mlmodel(mil_program, target=target, fp16=fp16, passes=passes)
    return Program.from_spec(mlmodel.get_spec(), mlmodel.weights_dir)


def build_mil(build: Callable[..., Any], feeds: dict[str, np.ndarray], *, target: str = "iOS16") -> Any:
    """`build(**vars)` as a MIL program (opset `target`) whose inputs are shaped like `feeds`."""
    from coremltools.converters.mil.mil import Function, Program as MilProgram

    specs = {name: mb.placeholder(shape=v.shape, dtype=_mil_dtype(v.dtype)) for name, v in feeds.items()}
    with Function(specs, _TARGETS[target]) as function:
        outputs = build(**function.inputs)
        function.set_outputs(list(outputs) if isinstance(outputs, (tuple, list)) else [outputs])
    program = MilProgram()
    program.add_function("main", function)
    return program


def run_mil(
    build: Callable[..., Any], feeds: dict[str, np.ndarray], *, target: str = "iOS16", fp16: bool = False,
) -> Any:
    """Build `build(**vars)` as a MIL program with inputs shaped like `feeds`, run it, return its output(s).

    One output: the array; several: a list in program order.
    """
    prog = to_program(build_mil(build, feeds, target=target), target=target, fp16=fp16)
    results = prog.run(feeds)
    values = [results[name] for name in prog.outputs]
    return values[0] if len(values) == 1 else values


def _mil_dtype(dtype: np.dtype) -> Any:
    from coremltools.converters.mil.mil import types

    return {np.dtype(np.float32): types.fp32, np.dtype(np.float16): types.fp16,
            np.dtype(np.int32): types.int32, np.dtype(np.bool_): types.bool}[np.dtype(dtype)]
