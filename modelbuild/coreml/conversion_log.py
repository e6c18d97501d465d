"""The conversion log: what the converters printed, what modelbuild did on its own, and how it ended.

`convert(..., log_path=...)` writes it (atomically) whether the conversion succeeds or fails; an
error message names the file instead of carrying the converter's output. Code that changes a model
on its own during a conversion (an automatic ONNX repair, an added torch-op converter) says so with
`note(...)`; `noting_into(buffer)` routes those notes into the captured converter output.
"""
from __future__ import annotations

import contextlib
import io
import logging
import traceback
from pathlib import Path
from typing import Iterator

from modelbuild import atomic
from modelbuild.coreml.targets import Plan

_LOGGER = logging.getLogger("modelbuild.coreml")
_CONVERTER_LOGGERS = ("coremltools", "onnx2coreml")


def note(message: str) -> None:
    """Record something modelbuild did to the model during this conversion (shown in the conversion log)."""
    _LOGGER.info(message)


@contextlib.contextmanager
def noting_into(buffer: io.StringIO) -> Iterator[None]:
    """Write `note(...)` lines (as 'modelbuild: ...') and the converters' log records into `buffer` meanwhile.

    The converters' records (coremltools, onnx2coreml; at whatever level their loggers are set to)
    get a handler of their own, so they reach the log even when the root logger has handlers
    (under pytest, or in an application), not only through logging's last-resort stderr handler.
    """
    ours = logging.StreamHandler(buffer)
    ours.setFormatter(logging.Formatter("modelbuild: %(message)s"))
    theirs = logging.StreamHandler(buffer)
    converters = [logging.getLogger(name) for name in _CONVERTER_LOGGERS]
    saved = _LOGGER.level, _LOGGER.propagate
    _LOGGER.addHandler(ours)
    _LOGGER.setLevel(logging.INFO)
    _LOGGER.propagate = False
    for logger in converters:
        logger.addHandler(theirs)
    try:
        yield
    finally:
        for logger in converters:
            logger.removeHandler(theirs)
        _LOGGER.removeHandler(ours)
        _LOGGER.setLevel(saved[0])
        _LOGGER.propagate = saved[1]


def write_log(path: Path | str | None, plan: Plan, captured: str, error: BaseException | None = None,
              summary: str | None = None) -> None:
    """Write the conversion log at `path` (nothing when None): route, captured output, outcome, traceback."""
    if path is None:
        return

    route = (f"frontend {plan.frontend}, format {plan.format}, minimum_deployment_target {plan.target_name}, "
             f"compute_precision {plan.compute_precision}")
    parts = [f"Core ML conversion: {route}", "", "Converter output:", captured.rstrip() or "(none)", ""]
    if error is None:
        parts.append("Outcome: converted.")
    else:
        parts += [f"Outcome: {summary or error}", "", "Traceback:",
                  "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, "\n".join(parts) + "\n")
