"""torch.export with declared flexible dimensions: the capture the two non-TorchScript paths share.

`onnx.exporter: dynamo` hands the same `dynamic_shapes` to `torch.onnx.export(..., dynamo=True)`,
and `coreml.<variant>.capture: export` captures with `export_program` below. Bounds are plain
data, {dimension: (min, max)} per input with max None for unbounded, so that both the recipe
(modelbuild.recipe.shapes) and modelbuild.coreml's FeatureSpecs can state them. torch is imported
inside the functions only.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Iterator, Sequence

Bounds = dict[int, tuple[int, "int | None"]]  # dimension -> (min, max); max None: unbounded

# Loggers of torch.export, dynamo and the ONNX exporter; their warnings are not actionable for a recipe author.
_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "torch._export", "onnxscript")


class TorchExportError(RuntimeError):
    """torch.export could not capture the model with the declared shapes."""


def span(shapes: Sequence[Sequence[int]]) -> Bounds:
    """The dimensions that differ among `shapes`, each with its smallest and largest size."""
    dims = range(len(shapes[0])) if shapes else range(0)
    return {d: (min(s[d] for s in shapes), max(s[d] for s in shapes)) for d in dims
            if len({s[d] for s in shapes}) > 1}


def dynamic_shapes(names: Sequence[str], bounds: Sequence[Bounds]) -> tuple | None:
    """torch.export `dynamic_shapes` in forward()'s positional order: a Dim named <input>_<dim> per bound."""
    import torch

    if not any(bounds):
        return None
    return tuple({d: torch.export.Dim(f"{name}_{d}", min=low, max=high) if high is not None
                  else torch.export.Dim(f"{name}_{d}", min=low) for d, (low, high) in sorted(dims.items())}
                 or None for name, dims in zip(names, bounds))


@contextlib.contextmanager
def quiet_export() -> Iterator[io.StringIO]:
    """Silence warnings, torch.export/ONNX exporter logging below ERROR and prints; yield what was printed."""
    captured = io.StringIO()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        for logger, level in zip(loggers, saved):
            logger.setLevel(level)


@contextlib.contextmanager
def export_settings() -> Iterator[None]:
    """The torch.export settings torch.onnx's own capture uses, so both paths accept the same shapes.

    `backed_size_oblivious` lets a dimension whose example size is 1 stay flexible (torch.export
    otherwise specialises sizes 0 and 1).
    """
    import torch

    with torch.fx.experimental._config.patch(backed_size_oblivious=True):
        yield


def export_program(model: Any, examples: tuple, names: Sequence[str], bounds: Sequence[Bounds]) -> Any:
    """`torch.export.export` of `model` on `examples` with the bounded dimensions, then `.run_decompositions({})`.

    Guards torch cannot prove over a whole range become runtime asserts in the graph
    (`prefer_deferred_runtime_asserts_over_guards`, as torch.onnx does) instead of failures.
    """
    import torch

    shapes = dynamic_shapes(names, bounds)
    try:
        with export_settings(), quiet_export():
            program = torch.export.export(model, examples, dynamic_shapes=shapes, strict=False,
                                          prefer_deferred_runtime_asserts_over_guards=True)
            return program.run_decompositions({})
    except Exception as exc:
        declared = {name: dims for name, dims in zip(names, bounds) if dims}
        raise TorchExportError(f"torch.export.export failed on {type(model).__name__} with inputs of shapes "
                               f"{[tuple(e.shape) for e in examples]} and flexible dimensions {declared or 'none'}: "
                               f"{_first_lines(exc)}") from exc


def _first_lines(exc: Exception, count: int = 6) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return "\n".join(lines[:count]) or type(exc).__name__
