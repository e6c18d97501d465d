"""The recipe reference as Markdown, generated from the schema's field descriptions.

README.md embeds it between markers; a test keeps the two in sync
(`python -m modelbuild schema --markdown` prints it).
"""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from modelbuild.recipe.schema import Recipe


def recipe_reference_markdown() -> str:
    """One table per section of the recipe: key, type, default, meaning."""
    out: list[str] = []
    for path, model in _sections(Recipe, "(top level)"):
        out.append(f"#### `{path}`\n\n{(model.__doc__ or '').strip()}\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        for name, field in model.model_fields.items():
            key = field.alias or name
            default = "required" if field.is_required() else _default(field)
            meaning = (field.description or "").replace("|", "\\|")
            out.append(f"| `{key}` | {_type(field.annotation)} | {default} | {meaning} |")
        out.append("")
    return "\n".join(out)


def _sections(model: type[BaseModel], path: str):
    yield path, model
    for name, field in model.model_fields.items():
        key = field.alias or name
        inner = _model_in(field.annotation)
        if inner is not None:
            mapping = typing.get_origin(_strip_none(field.annotation)) is dict
            child = f"{key}.<name>" if mapping else key
            yield from _sections(inner, child if path == "(top level)" else f"{path}.{child}")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    annotation = _strip_none(annotation)
    if typing.get_origin(annotation) is dict:
        annotation = typing.get_args(annotation)[1]
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _strip_none(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(annotation) and len(args) == 1 else annotation


def _type(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(annotation))
    if origin is dict:
        return f"mapping of {_type(typing.get_args(annotation)[1])}"
    if origin is list:
        return f"list of {_type(typing.get_args(annotation)[0])}"
    args = typing.get_args(annotation)
    if args and type(None) in args:
        return " or ".join(_type(a) for a in args if a is not type(None)) + " (optional)"
    return {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "`{}`" if value == {} else ("`[]`" if value == [] else "see section")
    if field.default is PydanticUndefined or field.default is None:
        return "none"
    if field.default == "":
        return '`""`'
    return f"`{field.default}`"
