"""Import coremltools without its Linux import noise: the runtime's `quiet_coremltools`, under the old name.

The one implementation lives in the runtime (`modelbuild/runtime/quiet.py`), which must not import
anything of modelbuild outside itself; the build system keeps calling `modelbuild.quiet.coremltools()`.
"""
from __future__ import annotations

from modelbuild.runtime import quiet_coremltools as coremltools

__all__ = ["coremltools"]
