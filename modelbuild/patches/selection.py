"""Choosing modules for a patch: name globs and a class reference; importing 'module:attr' references.

`selected_modules` walks `model.named_modules(remove_duplicate=False)`, so a
module registered under two names is found under both. Torch is not imported
here: the caller's model brings it.
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from modelbuild.patches.registry import PatchError
from modelbuild.references import REFERENCE_PATTERN, ModelBuildError, import_object


def check_reference(value: str | None, example: str) -> str | None:
    """Validator of 'package.module:attr' fields (the form the recipe schema checks for model.factory)."""
    if value is not None and not REFERENCE_PATTERN.match(value):
        raise ValueError(f"expected 'package.module:attr' (e.g. {example!r}), got {value!r}")
    return value


def resolve(reference: str, where: str, *, want_class: bool = False) -> Any:
    """Import a 'package.module:attr' reference; a PatchError names `where` if it is missing or unfit."""
    try:
        obj = import_object(reference, where)
    except ModelBuildError as err:
        raise PatchError(str(err)) from None
    if want_class and not isinstance(obj, type):
        raise PatchError(f"{where}: {reference!r} is a {type(obj).__name__}, not a class.")
    if not callable(obj):
        raise PatchError(f"{where}: {reference!r} is not a class or function.")
    return obj


def selected_modules(model: Any, names: list[str], module_type: type | None) -> list[tuple[str, Any]]:
    """(qualified name, module) of every module matching any glob of `names` (all when empty) and the type."""
    return [(name, module) for name, module in model.named_modules(remove_duplicate=False)
            if (not names or any(fnmatchcase(name, pattern) for pattern in names))
            and (module_type is None or isinstance(module, module_type))]


def describe_selection(names: list[str], type_reference: str | None) -> str:
    """'modules of type torch.nn:GELU whose name matches 'encoder.*'' for error messages."""
    parts = [f"of type {type_reference}"] if type_reference else []
    if names:
        parts.append(f"whose name matches {' or '.join(repr(n) for n in names)}")
    return "modules " + " ".join(parts)


def model_summary(model: Any, limit: int = 12) -> str:
    """The module classes a model has, most frequent first, for 'found none' messages."""
    counts: dict[str, int] = {}
    for _, module in model.named_modules():
        key = f"{type(module).__module__}:{type(module).__qualname__}"
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts, key=lambda key: -counts[key])
    more = f" and {len(ranked) - limit} more" if len(ranked) > limit else ""
    return ", ".join(f"{key} ({counts[key]})" for key in ranked[:limit]) + more
