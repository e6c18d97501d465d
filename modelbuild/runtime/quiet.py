"""Import coremltools without its Linux import noise.

On Linux coremltools logs "Failed to load _MLModelProxy ..." several times and
warns that the installed torch is newer than it was tested with. Neither is
actionable for a user of the runtime (or of the build system around it), so
every import of coremltools in the runtime goes through `quiet_coremltools()`
here, and the build system uses the same function (`modelbuild.quiet` re-exports it).
"""
from __future__ import annotations

import logging
import warnings
from types import ModuleType


def quiet_coremltools() -> ModuleType:
    """Import and return coremltools with its import-time warnings silenced."""
    logger = logging.getLogger("coremltools")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    return ct
