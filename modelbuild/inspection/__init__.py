"""Describe an .onnx, .mlmodel or .mlpackage file: what goes in, what comes out, what is inside.

`describe(path)` returns a JSON-serialisable dict (format, inputs and outputs with types and shapes,
image preprocessing, classifier outputs, an op or layer histogram, metadata, size on disk);
`describe_file(path)` renders it as the compact text that `modelbuild inspect PATH` prints.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.inspection.common import ACCEPTED, InspectError
from modelbuild.inspection.coreml_model import describe_coreml
from modelbuild.inspection.onnx_model import describe_onnx
from modelbuild.inspection.text import render
from modelbuild.sizes import artifact_sizes

__all__ = ["InspectError", "describe", "describe_file"]


def describe(path: Path) -> dict[str, Any]:
    """A structured, JSON-serialisable description of the model file or package at `path`."""
    path = Path(path)
    if not path.exists():
        raise InspectError(f"Cannot inspect {path}: there is no file or folder at that path "
                           f"(expected an existing {ACCEPTED} path).")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        description = describe_onnx(path)
    elif suffix in (".mlmodel", ".mlpackage"):
        description = describe_coreml(path)
    else:
        raise InspectError(f"Cannot inspect {path}: the extension {suffix or '(none)'!r} is not "
                           f"supported; inspect accepts an {ACCEPTED} path.")
    return {"path": str(path), **description, **_sizes_on_disk(path)}


def describe_file(path: Path) -> str:
    """The description of `path` as readable, aligned text (what `modelbuild inspect` prints)."""
    return render(describe(path))


def _sizes_on_disk(path: Path) -> dict[str, int]:
    """Total bytes on disk (a folder's files summed) and how many of them are weights."""
    return artifact_sizes(path)
