"""The surgery step reference as Markdown (for README.md and `modelbuild schema`-like help).

One section per step: the id, the Given/Result description and a table of
parameters (name, type, default, description) read from the pydantic models.
"""
from __future__ import annotations

import inspect
import json
from typing import Any

from modelbuild.surgery.registry import COREML_STEPS, ONNX_STEPS, StepRegistry


_JSON_TYPES = {"string": "str", "integer": "int", "boolean": "bool", "number": "float", "null": "null"}


def _type_text(prop: dict[str, Any] | bool) -> str:
    if not isinstance(prop, dict):  # `additionalProperties: true` of a dict[str, Any]
        return "any"
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(_type_text(option) for option in prop["anyOf"])
    kind = _JSON_TYPES.get(prop.get("type", "any"), prop.get("type", "any"))
    if kind == "array":
        return f"list[{_type_text(prop.get('items', {}))}]"
    if kind == "object":
        return f"dict[str, {_type_text(prop.get('additionalProperties', {}))}]"
    return str(kind)


def _section(step_id: str, step_class: type) -> str:
    schema = step_class.model_json_schema()
    required = set(schema.get("required", []))
    lines = [f"### `{step_id}`", "", inspect.cleandoc(step_class.__doc__ or ""), ""]
    rows = [(name, prop) for name, prop in schema["properties"].items() if name != "step"]
    if not rows:
        return "\n".join(lines + ["No parameters.", ""])
    lines += ["| parameter | type | default | description |", "|---|---|---|---|"]
    for name, prop in rows:
        field = step_class.model_fields[name]
        default = "required" if name in required else json.dumps(
            prop["default"] if "default" in prop else field.default_factory())
        lines.append(f"| `{name}` | {_type_text(prop)} | {default} | {prop.get('description', '')} |")
    return "\n".join(lines + [""])


def steps_markdown(registries: tuple[StepRegistry, ...] = (ONNX_STEPS, COREML_STEPS)) -> str:
    """Markdown reference of every step of `registries` (default: ONNX steps, then Core ML steps)."""
    parts = []
    for registry in registries:
        parts.append(f"## {registry.label} {registry.plural}\n")
        parts += [_section(step_id, step_class) for step_id, step_class in registry.models().items()]
    return "\n".join(parts)
