"""Import coremltools without its Linux import noise.

On Linux coremltools logs "Failed to load _MLModelProxy ..." several times and
warns that the installed torch is newer than it was tested with. Neither is
actionable for a modelbuild user, so every import of coremltools in modelbuild
goes through `coremltools()` here.
"""
from __future__ import annotations

import logging
import warnings
from types import ModuleType


def coremltools() -> ModuleType:
    """Import and return coremltools with its import-time warnings silenced."""
    logger = logging.getLogger("coremltools")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    return ct
