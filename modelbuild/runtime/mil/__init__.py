"""ML Program (MIL) interpreter of the Core ML reference runtime.

    from modelbuild.runtime.mil import Program, MIL_OPS
    program = Program.from_spec(spec, weights_dir)     # spec: Model_pb2.Model of type mlProgram
    outputs = program.run({"x": array})                # {"output name": numpy array, ...}

`MIL_OPS` is the registry of every supported op (see `kernel.py`); `program.py`
documents dtypes (fp16 programs compute in fp16) and shape checks.
"""
from __future__ import annotations

from . import ops  # noqa: F401  (registers the kernels)
from .kernel import MIL_OPS, OpContext
from .program import Program
from .values import ProgramFormatError

__all__ = ["MIL_OPS", "OpContext", "Program", "ProgramFormatError"]
