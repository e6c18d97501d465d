"""A digest of the runtime's own source: what a build's validation must re-run for when it changes.

Only the runtime's .py files count (the conformance harness beside it, modelbuild/runtime_conformance,
judges the runtime but does not change a single prediction, so editing it re-runs nothing).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

RUNTIME_ROOT = Path(__file__).parent


@lru_cache(maxsize=None)
def source_digest() -> str:
    """sha256 over the runtime's .py files: each relative path, a NUL, then the file's bytes, in path order."""
    digest = hashlib.sha256()
    for source in sorted(RUNTIME_ROOT.rglob("*.py")):
        digest.update(source.relative_to(RUNTIME_ROOT).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()
