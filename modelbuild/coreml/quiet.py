"""Keep coremltools, onnx2coreml and the torch tracer quiet during a conversion.

coremltools draws tqdm progress bars (pass pipelines, torch op conversion,
NeuralNetwork translation), logs warnings, emits Python warnings and, in its
quantization utilities, prints to stdout. None of it is actionable for a
modelbuild user. `quiet_conversion()` silences all of it for the duration of a
`with` block and keeps the captured text so that an error can show it.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import warnings
from typing import Iterable, Iterator

# (module, attribute) of every tqdm that coremltools' conversion paths call.
_PROGRESS_BARS = (
    ("coremltools.converters.mil.mil.passes.pass_pipeline", "tqdm"),
    ("coremltools.converters.mil.frontend.torch.ops", "_tqdm"),
    ("coremltools.converters.mil.backend.nn.op_mapping", "_tqdm"),
)
_LOGGERS = ("coremltools", "onnx2coreml", "torch.jit", "torch.onnx")


def _no_progress_bar(iterable: Iterable | None = None, *args, **kwargs) -> Iterable:
    """A stand-in for tqdm: the iterable itself, no bar."""
    return iterable if iterable is not None else ()


@contextlib.contextmanager
def patched(module_name: str, attribute: str, value) -> Iterator[None]:
    """`module_name.attribute` set to `value` for the block (nothing when the module is not installed)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # the frontend is not installed: nothing to silence
        yield
        return
    original = getattr(module, attribute)
    setattr(module, attribute, value)
    try:
        yield
    finally:
        setattr(module, attribute, original)


@contextlib.contextmanager
def _loggers_at(level: int) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, saved):
            logger.setLevel(old)


@contextlib.contextmanager
def quiet_conversion() -> Iterator[io.StringIO]:
    """Silence progress bars, warnings, logging below ERROR and stdout/stderr prints.

    Yields the buffer that received whatever was printed, for error messages.
    """
    captured = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(_loggers_at(logging.ERROR))
        for module_name, attribute in _PROGRESS_BARS:
            stack.enter_context(patched(module_name, attribute, _no_progress_bar))
        stack.enter_context(contextlib.redirect_stdout(captured))
        stack.enter_context(contextlib.redirect_stderr(captured))
        yield captured
