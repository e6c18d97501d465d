"""Declarative model surgery: named, documented, tested repairs that a recipe lists.

    from modelbuild import surgery
    onnx_model = surgery.apply_steps(onnx_model, [
        {"step": "onnx::flatten_shape_reshape"},
        {"step": "onnx::rename_outputs", "names": {"495": "logits"}},
    ])
    mlmodel = surgery.apply_steps(mlmodel, [{"step": "coreml::add_softmax", "output": "logits"}])

Two registries, `ONNX_STEPS` (steps take and return an onnx.ModelProto) and
`COREML_STEPS` (steps take and return a coremltools MLModel, NeuralNetwork or
ML Program). A step is a pydantic model: its fields are the parameters, its
`step` field the id, its docstring a "Given: ... Result: ..." description, its
`apply(model)` the edit. `onnx_step_models()` / `coreml_step_models()` return
the models by id, for the recipe schema's discriminated union on `step`.

Importing this package imports pydantic only; the registries import their step
modules when first asked for a step, and onnx and coremltools are imported when
a step is applied.
"""
from __future__ import annotations

from modelbuild.surgery.registry import (
    COREML_STEPS,
    ONNX_STEPS,
    RegisteredStep,
    StepRegistry,
    SurgeryError,
    SurgeryStep,
    UnknownStepError,
    apply_steps,
    parse_steps,
)


def onnx_step_models() -> dict[str, type[SurgeryStep]]:
    """Step id -> parameter model of every ONNX step (a pydantic model with a `step` Literal)."""
    return ONNX_STEPS.models()


def coreml_step_models() -> dict[str, type[SurgeryStep]]:
    """Step id -> parameter model of every Core ML step (a pydantic model with a `step` Literal)."""
    return COREML_STEPS.models()


__all__ = [
    "COREML_STEPS",
    "ONNX_STEPS",
    "RegisteredStep",
    "StepRegistry",
    "SurgeryError",
    "SurgeryStep",
    "UnknownStepError",
    "apply_steps",
    "coreml_step_models",
    "onnx_step_models",
    "parse_steps",
]
