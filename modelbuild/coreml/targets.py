"""Which model format, deployment target and precision combinations can work.

Core ML deployment targets map to specification versions (iOS13 = 4 ... iOS18
= 9). A NeuralNetwork model runs up to spec version 5 (iOS14): coremltools
refuses NeuralNetwork for iOS15 and later, and an ML Program needs iOS15 or
later. Every refusal says what would work instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modelbuild.coreml.errors import CoreMLBuildError

Format = Literal["neuralnetwork", "mlprogram"]
Precision = Literal["float32", "float16"]
Frontend = Literal["onnx", "torch"]

FORMATS: tuple[str, ...] = ("neuralnetwork", "mlprogram")
PRECISIONS: tuple[str, ...] = ("float32", "float16")
FRONTENDS: tuple[str, ...] = ("onnx", "torch")
IOS13_SPEC, IOS15_SPEC = 4, 6  # Core ML specification versions


@dataclass(frozen=True)
class Plan:
    """A validated conversion request: the coremltools target enum plus our strings."""

    frontend: Frontend
    format: Format
    target_name: str
    target: Any  # coremltools.target member
    compute_precision: Precision


def _targets(ct) -> dict[str, Any]:
    """Deployment target names coremltools knows, iOS13 equivalents and newer."""
    return {name: t for name, t in ct.target.__members__.items() if t.value >= IOS13_SPEC}


def _names(targets: dict[str, Any], keep) -> str:
    return ", ".join(name for name, t in targets.items() if keep(t.value))


def plan_conversion(
    ct, *, frontend: str, format: str, minimum_deployment_target: str, compute_precision: str
) -> Plan:
    """Validate the requested combination; raise CoreMLBuildError naming what would work."""
    if frontend not in FRONTENDS:
        raise CoreMLBuildError(f"Unknown Core ML frontend {frontend!r}; expected one of {', '.join(FRONTENDS)}.")
    if format not in FORMATS:
        raise CoreMLBuildError(f"Unknown Core ML model format {format!r}; expected one of {', '.join(FORMATS)}.")
    if compute_precision not in PRECISIONS:
        raise CoreMLBuildError(
            f"Unknown compute precision {compute_precision!r}; expected one of {', '.join(PRECISIONS)}."
        )
    targets = _targets(ct)
    if minimum_deployment_target not in targets:
        raise CoreMLBuildError(
            f"Unknown minimum deployment target {minimum_deployment_target!r}; "
            f"expected one of {', '.join(targets)}."
        )
    target = targets[minimum_deployment_target]
    if format == "neuralnetwork" and target.value >= IOS15_SPEC:
        raise CoreMLBuildError(
            f"Format 'neuralnetwork' cannot target {minimum_deployment_target}: coremltools writes "
            "NeuralNetwork models only for iOS14/macOS11 and older. Use format 'mlprogram' for "
            f"{minimum_deployment_target}, or a NeuralNetwork target among "
            f"{_names(targets, lambda v: v < IOS15_SPEC)}."
        )
    if format == "mlprogram" and target.value < IOS15_SPEC:
        raise CoreMLBuildError(
            f"Format 'mlprogram' cannot target {minimum_deployment_target}: ML Programs need "
            f"iOS15/macOS12 or newer. Use format 'neuralnetwork' for {minimum_deployment_target}, "
            f"or an ML Program target among {_names(targets, lambda v: v >= IOS15_SPEC)}."
        )
    return Plan(frontend, format, minimum_deployment_target, target, compute_precision)  # type: ignore[arg-type]
