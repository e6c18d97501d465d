"""Load a recipe file: YAML -> schema -> cross-field checks -> file checks.

Every problem becomes one line `recipes/x.yaml:LINE: field.path: message`,
and all of them are reported together in a `RecipeError`.
"""
from __future__ import annotations

import importlib.util
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from modelbuild.recipe.checks import cross_field_problems
from modelbuild.recipe.schema import Recipe
from modelbuild.recipe.yaml_lines import YamlProblem, load_with_lines
from modelbuild.surgery.registry import RegisteredStep


class RecipeError(ValueError):
    """One or more problems in a recipe file, one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def project_root(recipe_path: Path) -> Path:
    """The folder relative recipe paths start from: the parent of `recipes/`, else the recipe's folder."""
    folder = recipe_path.resolve().parent
    return folder.parent if folder.name == "recipes" else folder


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file; raise RecipeError listing every problem."""
    path = Path(path)
    text = _read_text(path)
    try:
        data, lines = load_with_lines(text)
    except YamlProblem as err:
        where = f"{_dotted(err.path)}: " if err.path else ""
        raise RecipeError([one_line(f"{path}:{err.line}: {where}{err.message}")]) from None
    if not isinstance(data, dict):
        raise RecipeError([f"{path}:1: expected a mapping of recipe fields (name, model, inputs, ...), "
                           f"got {type(data).__name__}"])

    def line_of(loc: tuple) -> int:
        for end in range(len(loc), -1, -1):
            if loc[:end] in lines:
                return lines[loc[:end]]
        return 1

    def fmt(loc: tuple, message: str) -> str:
        return one_line(f"{path}:{line_of(loc)}: {_dotted(loc) or '(top level)'}: {message}")

    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError([fmt(tuple(e["loc"]), _message(e, data)) for e in err.errors()]) from None
    make_importable(project_root(path))
    try:
        problems = cross_field_problems(recipe) + _file_problems(recipe, project_root(path))
    except Exception as err:  # a check that trips over a recipe is a bug; it must still cost one line
        raise RecipeError([one_line(f"{path}:1: the recipe checks failed ({type(err).__name__}: {err}); "
                                    "this is a modelbuild bug, please report it")]) from None
    if problems:
        raise RecipeError([fmt(loc, message) for loc, message in problems])
    return recipe


MAX_RECIPE_BYTES = 1 << 20


def _read_text(path: Path) -> str:
    """The recipe's text: UTF-8 (a BOM is allowed), at most MAX_RECIPE_BYTES."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_RECIPE_BYTES + 1)
    except OSError as err:
        raise RecipeError([f"{path}: cannot read the recipe ({err.strerror or err})"]) from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError([f"{path}: the recipe is larger than {MAX_RECIPE_BYTES >> 20} MB; a recipe declares a "
                           "model, it does not hold data"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise RecipeError([f"{path}:{line}: the recipe is not UTF-8 text (byte 0x{data[err.start]:02x}); "
                           "save it as UTF-8"]) from None


def make_importable(root: Path) -> None:
    """Put the project root on sys.path (as doit does for the folder of dodo.py), so that a factory or
    labels module kept in the project imports the same from `modelbuild check`, the Python API and doit."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def _file_problems(recipe: Recipe, root: Path) -> list[tuple[tuple, str]]:
    files: list[tuple[tuple, str]] = []
    if recipe.model.weights is not None:
        files.append((("model", "weights", "path"), recipe.model.weights.path))
    if recipe.classifier is not None and recipe.classifier.labels.file is not None:
        files.append((("classifier", "labels", "file"), recipe.classifier.labels.file))
    files += [(("validate", "samples", i), sample) for i, sample in enumerate(recipe.validate_.samples)]
    files += [(("agreement", "samples", i), sample)
              for i, sample in enumerate(recipe.agreement.samples if recipe.agreement else [])]
    if recipe.model.onnx is not None:
        files.append((("model", "onnx"), recipe.model.onnx))
    problems = [(where, problem) for where, file in files if (problem := _file_problem(root, file))]
    module = (recipe.model.factory or "").split(":")[0]
    if module and importlib.util.find_spec(module.split(".")[0]) is None:
        problems.append((("model", "factory"), f"cannot import {module!r}: no package "
                                               f"{module.split('.')[0]!r} is installed"))
    return problems


def _file_problem(root: Path, file: str) -> str | None:
    """Why `file` (relative to the project root) is not a readable file, or None."""
    try:
        return None if (root / file).is_file() else f"no such file: {root / file}"
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL byte, ...
        return f"not a usable path ({err.__class__.__name__}): {shorten(file)}"


MAX_LINE = 800


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """`text` on one line (line breaks shown as ⏎), cut to `limit` characters."""
    text = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shorten(value: Any, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters, so that an error line stays readable whatever the recipe holds."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dotted(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _message(error: dict[str, Any], data: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(tuple(error["loc"])[:-1], data)
        return f"unknown key; expected one of {', '.join(allowed)}" if allowed else "unknown key"
    if kind == "missing":
        return "required field is missing"
    message = error["msg"]
    if message.startswith("Value error, "):
        return message[len("Value error, "):]
    if kind in ("step_missing", "unknown_step"):  # the message lists the step ids
        return message
    return f"{message}, got {shorten(error.get('input'))}"


def _allowed_keys(loc: tuple, data: Any) -> list[str]:
    """Field names (aliases) accepted at `loc`, found by walking the schema (and, for a step, its id in `data`)."""
    model: Any = Recipe
    for part in loc:
        data = data.get(part) if isinstance(data, dict) else data[part] if isinstance(data, list) else None
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            model = field.annotation
        else:
            model = _value_type(model)
        model = _step_model(model, data)
    model = _unwrap_optional(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items()]
    return []


def _step_model(annotation: Any, data: Any) -> Any:
    """A step field (Annotated with RegisteredStep) -> the model of the step `data` names; else unchanged."""
    if typing.get_origin(annotation) is typing.Annotated and isinstance(data, dict):
        for meta in annotation.__metadata__:
            if isinstance(meta, RegisteredStep) and data.get("step") in meta.registry:
                return meta.registry.get(data["step"])
    return annotation


def _value_type(annotation: Any) -> Any:
    """dict[str, X] -> X, X | None -> X (walking a mapping or optional level)."""
    args = getattr(_unwrap_optional(annotation), "__args__", ())
    return args[-1] if args else annotation


def _unwrap_optional(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    if type(None) in args:
        return next(a for a in args if a is not type(None))
    return annotation
