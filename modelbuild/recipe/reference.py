"""The reference pages in docs/, generated from the recipe schema and the step registries.

One renderer for every documented model: recipe sections, surgery steps and model patches
are each a table of key, type, default and meaning read from the pydantic fields, with one
spelling per type (`str`, `list[str]`, `dict[str, str]`, `int | None`, `"a" | "b"`).

    python -m modelbuild.recipe.reference docs    # what `make docs` runs; a test keeps docs/ current

`modelbuild schema --markdown` prints the same pages.
"""
from __future__ import annotations

import inspect
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from modelbuild.recipe.schema import Recipe
from modelbuild.surgery.registry import RegisteredStep, StepRegistry

RECIPE_PAGE = "recipe-reference.md"
STEPS_PAGE = "surgery-reference.md"
GENERATED = ("<!-- Generated from the schema by `make docs` (python -m modelbuild.recipe.reference docs): "
             "edit the descriptions in modelbuild/, not this file. -->\n\n")
TOP_LEVEL = "(top level)"

RECIPE_INTRO = f"""# Recipe reference

Every key of a recipe file (`recipes/<name>.yaml`), section by section. Relative paths in a recipe
are relative to the project root (the folder that holds `recipes/`). Unknown keys are errors; every
error names the file, the line and the field. The steps that `onnx.surgery`, `coreml.<name>.surgery`
and `model.patches` list are in the [surgery step and model patch reference]({STEPS_PAGE}).
`modelbuild schema` prints the JSON Schema of recipes, for editors.
"""

STEPS_INTRO = f"""# Surgery step and model patch reference

Steps are listed in a recipe as mappings with a `step` id and the step's keys, applied in order,
and are part of the fingerprint of the stage that applies them (see the
[recipe reference]({RECIPE_PAGE})).
"""

REGISTRY_INTROS = {
    "onnx": "Listed under `onnx.surgery`, applied to the ONNX file after the export.",
    "coreml": "Listed under `coreml.<variant>.surgery`, applied to the Core ML model after conversion.",
    "torch": ("Listed under `model.patches`, applied in order to the PyTorch model after its weights are loaded "
              "and before `model.normalize` wraps it. Every PyTorch model gets {always} first, listed or not."),
}

_SCALARS = {str: "str", int: "int", float: "float", bool: "bool", type(None): "None", Any: "Any"}


def reference_pages() -> dict[str, str]:
    """File name under docs/ -> its Markdown: the recipe reference, then the steps and patches."""
    return {RECIPE_PAGE: GENERATED + recipe_reference(), STEPS_PAGE: GENERATED + steps_reference()}


def reference_markdown() -> str:
    """Every reference page, one after the other (what `modelbuild schema --markdown` prints)."""
    return "\n".join(reference_pages().values())


def write_pages(directory: Path) -> list[Path]:
    """Write the reference pages into `directory`; the files whose text changed."""
    changed = []
    for name, text in reference_pages().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def recipe_reference() -> str:
    """One table per section of the recipe: key, type, default, meaning."""
    out = [RECIPE_INTRO]
    for path, model in _sections(Recipe, TOP_LEVEL):
        out += [f"## `{path}`", "", _inline(inspect.cleandoc(model.__doc__ or "")), "", _table(model, path)]
    return "\n".join(out)


def steps_reference() -> str:
    """One section per registry (ONNX and Core ML surgery steps, model patches), one per step in it."""
    from modelbuild.patches import ALWAYS_APPLIED, TORCH_PATCHES
    from modelbuild.surgery import COREML_STEPS, ONNX_STEPS

    always = ", ".join(f"`{patch['step']}`" for patch in ALWAYS_APPLIED)
    out = [STEPS_INTRO]
    for registry in (ONNX_STEPS, COREML_STEPS, TORCH_PATCHES):
        out += [f"## {_registry_heading(registry)}", "", REGISTRY_INTROS[registry.target].format(always=always),
                ""]
        for step_id, step_class in registry.models().items():
            out += [f"### `{step_id}`", "", _docstring(step_class.__doc__ or ""), ""]
            out.append(_table(step_class, None) if len(step_class.model_fields) > 1 else "No parameters.\n")
    return "\n".join(out)


def _sections(model: type[BaseModel], path: str) -> Iterator[tuple[str, type[BaseModel]]]:
    yield path, model
    for key, field in _fields(model):
        inner = _section_model(field.annotation)
        if inner is not None:
            yield from _sections(inner, _child_path(path, key, field))


def _child_path(path: str, key: str, field: FieldInfo) -> str:
    child = f"{key}.<name>" if typing.get_origin(_without_none(field.annotation)) is dict else key
    return child if path == TOP_LEVEL else f"{path}.{child}"


def _fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        if name != "step":  # a step's id: the section heading
            yield field.alias or name, field


def _table(model: type[BaseModel], path: str | None) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, field in _fields(model):
        rows.append(f"| {_key_cell(path, key, field)} | {_cell(type_name(field.annotation, field.metadata))} | "
                    f"{_default(field)} | {_cell(_inline(field.description or ''))} |")
    return "\n".join(rows) + "\n"


def _key_cell(path: str | None, key: str, field: FieldInfo) -> str:
    """The key, linked to where its value is documented: its section, or the reference of its steps."""
    registry = _step_registry(field.annotation)
    if registry is not None:
        return f"[`{key}`]({STEPS_PAGE}#{slug(_registry_heading(registry))})"
    if path is not None and _section_model(field.annotation) is not None:
        return f"[`{key}`](#{slug(f'`{_child_path(path, key, field)}`')})"
    return f"`{key}`"


def type_name(annotation: Any, metadata: list[Any] = ()) -> str:
    """The one spelling of a field's type: `str`, `list[str]`, `dict[str, int]`, `float | None`, `"a" | "b"`;
    a recipe section is `mapping`, a list of steps names the registry's kind of step."""
    step_registry = next((item.registry for item in metadata if isinstance(item, RegisteredStep)), None)
    if step_registry is not None:
        return f"{step_registry.label} {step_registry.noun}"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], list(args[1:]))
    if origin is typing.Literal:
        return " | ".join(json.dumps(value) if value is not None else "None" for value in args)
    if origin in (typing.Union, types.UnionType):
        members = [type_name(arg) for arg in args if arg is not type(None)]
        return " | ".join(members + (["None"] if type(None) in args else []))
    if origin is list:
        return f"list[{type_name(args[0])}]"
    if origin is dict:
        return f"dict[{type_name(args[0])}, {type_name(args[1])}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"The reference has no spelling for the type {annotation!r}: add one to type_name().")


def _step_registry(annotation: Any) -> StepRegistry | None:
    """The registry of a list of steps (`list[Annotated[SurgeryStep, RegisteredStep(...)]]`), else None."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is not list or typing.get_origin(args[0]) is not typing.Annotated:
        return None
    return next((item.registry for item in typing.get_args(args[0])[1:] if isinstance(item, RegisteredStep)), None)


def _registry_heading(registry: StepRegistry) -> str:
    return f"{registry.label} {registry.plural}"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _without_none(annotation)
    if typing.get_origin(annotation) is dict:
        annotation = typing.get_args(annotation)[1]
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _without_none(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    rest = [arg for arg in args if arg is not type(None)]
    return rest[0] if type(None) in args and len(rest) == 1 else annotation


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see section"
    if value is None:
        return "none"
    return _cell(f"`{json.dumps(value)}`")


def _docstring(doc: str) -> str:
    """A step's docstring: the summary, its Given/Result block as text, then the prose after it."""
    summary, _, rest = inspect.cleandoc(doc).partition("\n\n")
    lines = rest.splitlines()
    block = 0
    while block < len(lines) and (lines[block].startswith(("Given:", "Result:")) or lines[block][:1].isspace()):
        block += 1
    parts = [_inline(summary)]
    if block:
        parts.append("```text\n" + "\n".join(lines[:block]) + "\n```")
    if lines[block:]:
        parts.append(_inline("\n".join(lines[block:])))
    return "\n\n".join(parts)


def _inline(text: str) -> str:
    """Markdown text as written: `<` and `*` outside code spans escaped (no HTML tags, no emphasis)."""
    pieces = re.split(r"(`[^`]*`)", text)
    return "".join(piece if piece.startswith("`") else re.sub(r"([<*])", r"\\\1", piece) for piece in pieces)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "docs")
    changed = write_pages(directory)
    names = ", ".join(path.name for path in changed)
    print(f"{directory}: {names} regenerated" if changed else f"{directory}: the reference is up to date")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
