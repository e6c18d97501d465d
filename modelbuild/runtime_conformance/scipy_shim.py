"""A stand-in for the three scipy functions coremltools' MIL op tests import.

`iOS14/test_activation.py`, `test_elementwise_unary.py`, `test_reduction.py`
and `iOS17/test_elementwise_unary.py` do `import scipy` at module level and use
only `scipy.special.erf`, `scipy.special.softmax` and `scipy.special.logsumexp`
to compute expected values. scipy is not a modelbuild dependency, and without
it those four files (gelu, softmax, erf, every reduction...) cannot even be
collected. When scipy is missing, `install_if_missing()` (called by the
plugin when the runner passes --modelbuild-scipy-shim, i.e. for the MIL suite
only: torch probes for scipy and would find the stand-in) registers a tiny
`scipy` module with those three functions written in numpy (erf through
`math.erf`, element by element, exact to double precision). With scipy
installed, nothing is replaced.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import sys
import types
from typing import Any

import numpy as np

SHIM_MARKER = "__modelbuild_conformance_shim__"


def erf(x: Any) -> Any:
    """The error function, element-wise, in the input's float precision."""
    values = np.asarray(x)
    result = np.vectorize(math.erf, otypes=[np.float64])(values)
    if np.issubdtype(values.dtype, np.floating):
        result = result.astype(values.dtype)
    return result if values.ndim else result[()]


def softmax(x: Any, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis` (all elements when None), shifted for stability."""
    values = np.asarray(x)
    shifted = np.exp(values - np.amax(values, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def logsumexp(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) along `axis`, computed around the maximum for stability."""
    values = np.asarray(x)
    peak = np.amax(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    total = np.log(np.sum(np.exp(values - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


def install_if_missing() -> bool:
    """Register the shim as `scipy` / `scipy.special` unless scipy is importable; True if it did."""
    if "scipy" in sys.modules or importlib.util.find_spec("scipy") is not None:
        return False
    special = types.ModuleType("scipy.special", "modelbuild conformance stand-in for scipy.special")
    special.__spec__ = importlib.machinery.ModuleSpec("scipy.special", None)
    special.erf = erf
    special.softmax = softmax
    special.logsumexp = logsumexp
    scipy = types.ModuleType("scipy", "modelbuild conformance stand-in for scipy (see scipy_shim.py)")
    scipy.__spec__ = importlib.machinery.ModuleSpec("scipy", None, is_package=True)
    scipy.__path__ = []
    scipy.__version__ = "0+modelbuild.conformance.shim"
    scipy.special = special
    setattr(scipy, SHIM_MARKER, True)
    sys.modules["scipy"] = scipy
    sys.modules["scipy.special"] = special
    return True
