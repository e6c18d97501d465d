"""Pick the recipe's outputs out of whatever a model's forward() returns.

Models return a tensor, a tuple or list, a dict (torchvision segmentation: {'out', 'aux'}),
a namedtuple or a dataclass (transformers' ModelOutput). A recipe names its outputs and may
give each a `path` ('out', 'logits', '0', 'aux.1'). `select_outputs` makes the model's
forward() return exactly those tensors, in the recipe's order, so that the ONNX export, both
Core ML frontends and validation see the same plain outputs.

The selection replaces the instance's `forward` (no wrapper module), so the exported graph's
node and weight names stay those of the model.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from modelbuild.recipe.schema import Recipe


class OutputSelectionError(ValueError):
    """The recipe's outputs cannot be found in what the model returns (the message lists what it returns)."""


def select_outputs(model: Any, recipe: Recipe) -> Any:
    """Make `model.forward` return the recipe's outputs: one tensor, or a tuple of them in recipe order."""
    original = model.forward
    names = list(recipe.outputs)
    paths = {name: spec.path for name, spec in recipe.outputs.items()}

    @functools.wraps(original)  # keeps forward()'s signature: torch.export maps inputs to dynamic shapes by it
    def forward(*args, **kwargs):
        result = original(*args, **kwargs)
        if _plain(result, len(names)) and not any(paths.values()):
            return result
        picked = tuple(pick(result, name, position, paths[name], len(names)) for position, name in enumerate(names))
        return picked[0] if len(picked) == 1 else picked

    model.forward = forward
    return model


def _plain(result: Any, count: int) -> bool:
    """A tensor for one output, or a flat tuple/list of as many tensors as outputs: nothing to pick."""
    if _is_tensor(result):
        return count == 1
    return (isinstance(result, (tuple, list)) and not _fields(result) and len(result) == count
            and all(_is_tensor(item) for item in result))


def pick(result: Any, name: str, position: int, path: str | None, count: int) -> Any:
    """The tensor for output `name`: at `path`, or found by name (mappings) or position (sequences)."""
    if path is None:
        if _is_tensor(result) and count == 1:
            return result
        path = _default_path(result, name, position, count)
    value = result
    walked: list[str] = []
    for part in path.split("."):
        children = leaves_of(value)
        if children is None or part not in children:
            here = ".".join(walked) or "the returned value"
            offered = ", ".join(children) if children else f"nothing (it is {_kind(value)})"
            raise OutputSelectionError(f"outputs.{name}.path {path!r}: {here} has no {part!r}; it has {offered}")
        value = children[part]
        walked.append(part)
    if not _is_tensor(value):
        raise OutputSelectionError(f"outputs.{name}: {path!r} is {_kind(value)}, not a tensor; tensors the model "
                                   f"returns: {', '.join(tensor_paths(result)) or 'none'}")
    return value


def _default_path(result: Any, name: str, position: int, count: int) -> str:
    if _is_tensor(result):
        raise OutputSelectionError(f"outputs: the model returns one tensor, the recipe names {count} outputs")
    children = leaves_of(result)
    if children is None:
        raise OutputSelectionError(f"outputs.{name}: the model returns {_kind(result)}, not a tensor")
    if isinstance(result, Mapping) or _fields(result):
        if name in children:
            return name
        raise OutputSelectionError(
            f"outputs.{name}: the model returns {_kind(result)} with no {name!r}; name the output after one of its "
            f"tensors ({', '.join(tensor_paths(result)) or 'none'}) or give outputs.{name}.path")
    if len(children) == count:
        return str(position)
    raise OutputSelectionError(f"outputs: the model returns {len(children)} values, the recipe names {count}; give "
                               f"each output a path (tensors it returns: {', '.join(tensor_paths(result)) or 'none'})")


def leaves_of(value: Any) -> dict[str, Any] | None:
    """The children of a structured value by path component (None for a leaf)."""
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    fields = _fields(value)
    if fields:
        return {field: getattr(value, field) for field in fields}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and not _is_tensor(value):
        return {str(index): item for index, item in enumerate(value)}
    return None


def tensor_paths(value: Any, prefix: str = "") -> list[str]:
    """Every path in `value` that leads to a tensor (depth first, in order)."""
    if _is_tensor(value):
        return [prefix]
    children = leaves_of(value)
    if not children:
        return []
    return [path for key, item in children.items()
            for path in tensor_paths(item, f"{prefix}.{key}" if prefix else key)]


def _fields(value: Any) -> tuple[str, ...]:
    if hasattr(value, "_fields") and isinstance(value, tuple):  # namedtuple
        return tuple(value._fields)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(f.name for f in dataclasses.fields(value))
    return ()


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} (keys {', '.join(map(str, value))})"
    return f"a {type(value).__name__}"
