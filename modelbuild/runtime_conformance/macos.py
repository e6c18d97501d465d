"""Make coremltools (and its test suites) believe they run on a recent macOS.

coremltools decides "can I predict?" in three ways, all of which must say yes
before one of its tests reaches `MLModel.predict`:

- the module constant `coremltools._deps._IS_MACOS`, which many modules copy
  with `from coremltools._deps import _IS_MACOS` (the MIL and torch testing
  utilities among them);
- the functions `coremltools.models.utils._is_macos()` and `_macos_version()`,
  also copied by name into `coremltools.models.model` and others, and compared
  against versions such as `(12, 0)` (ML Programs), `(13, 0)` (iOS16 ops) or
  `(15, 0)` (iOS18 ops, states);
- `platform`-free checks in the tests themselves (`ct.utils._macos_version()`),
  which read the attribute at call time.

`pretend_macos()` patches the constant and the functions in every coremltools
module already imported, and must run before the test modules are imported
(the plugin calls it from `pytest_configure`, before collection), so that
later `from ... import _IS_MACOS` statements copy the patched values.
"""
from __future__ import annotations

import sys
from typing import Callable

from modelbuild.runtime import quiet_coremltools

#: The macOS version coremltools is told it runs on: recent enough that no
#: test is skipped for an old OS (iOS18 targets need macOS 15, some tests skip
#: below 15.2 for Apple bugs fixed there).
PRETENDED_MACOS_VERSION: tuple[int, int] = (15, 5)


def _is_macos() -> bool:
    """Replacement of `coremltools.models.utils._is_macos`: always macOS."""
    return True


def _macos_version() -> tuple[int, int]:
    """Replacement of `coremltools.models.utils._macos_version`."""
    return PRETENDED_MACOS_VERSION


def _coremltools_modules() -> list:
    return [
        module
        for name, module in list(sys.modules.items())
        if module is not None and (name == "coremltools" or name.startswith("coremltools."))
    ]


def pretend_macos() -> None:
    """Patch coremltools so that it behaves as on macOS `PRETENDED_MACOS_VERSION`.

    Idempotent. Imports coremltools (quietly) if it is not imported yet.
    """
    quiet_coremltools()
    import coremltools.models.utils as ct_utils

    originals: dict[str, Callable] = {
        "_is_macos": ct_utils.__dict__.get("_is_macos"),
        "_macos_version": ct_utils.__dict__.get("_macos_version"),
    }
    replacements: dict[str, Callable] = {"_is_macos": _is_macos, "_macos_version": _macos_version}
    for module in _coremltools_modules():
        namespace = vars(module)
        if "_IS_MACOS" in namespace:
            namespace["_IS_MACOS"] = True
        if "_MACOS_VERSION" in namespace:
            namespace["_MACOS_VERSION"] = PRETENDED_MACOS_VERSION
        for name, replacement in replacements.items():
            current = namespace.get(name)
            if current is not None and current in (originals[name], replacement):
                namespace[name] = replacement


def is_pretending_macos() -> bool:
    """True once `pretend_macos()` has patched coremltools."""
    deps = sys.modules.get("coremltools._deps")
    utils = sys.modules.get("coremltools.models.utils")
    return bool(
        deps is not None
        and getattr(deps, "_IS_MACOS", False)
        and utils is not None
        and getattr(utils, "_macos_version", None) is _macos_version
    )
