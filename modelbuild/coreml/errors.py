"""The one error type of the Core ML conversion stage."""
from __future__ import annotations


class CoreMLBuildError(ValueError):
    """A Core ML conversion was asked for something that cannot work, or failed.

    The message says what was asked, why it cannot work and what would.
    """
