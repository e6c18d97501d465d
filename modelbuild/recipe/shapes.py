"""Flexible input shapes of a recipe: which shapes are allowed, which to validate at, which must be refused.

Pure and light (no torch, onnx or coremltools): used by the recipe checks, the ONNX export
(dynamic axes, or torch.export bounds for the dynamo exporter), the Core ML stage and validation.
"""
from __future__ import annotations

from modelbuild.recipe.schema import Input, Recipe
from modelbuild.torch_export import Bounds, span


def flexible_dims(spec: Input) -> list[int]:
    """Indices of the dimensions that may change."""
    if spec.flexible is None:
        return []
    if spec.flexible.range is not None:
        return sorted(spec.flexible.range)
    shapes = spec.flexible.enumerated or []
    return [d for d in range(len(spec.shape)) if len({tuple(s)[d] for s in shapes} | {spec.shape[d]}) > 1]


def allows(spec: Input, shape: list[int]) -> bool:
    """Whether the declared shapes include `shape`."""
    if list(shape) == list(spec.shape):
        return True
    if spec.flexible is None or len(shape) != len(spec.shape):
        return False
    if spec.flexible.enumerated is not None:
        return [list(s) for s in spec.flexible.enumerated].count(list(shape)) > 0
    for d, size in enumerate(shape):
        if d in spec.flexible.range:
            low, high = spec.flexible.range[d]
            if size < low or (high != -1 and size > high):
                return False
        elif size != spec.shape[d]:
            return False
    return True


def validation_shapes(spec: Input) -> list[tuple[str, list[int]]]:
    """(label, shape) to validate at: minimum, default, maximum and one other; or every enumerated shape."""
    if spec.flexible is None:
        return [("default", list(spec.shape))]
    if spec.flexible.enumerated is not None:
        shapes = [("default", list(spec.shape))]
        shapes += [(f"shape {i + 1}", list(s)) for i, s in enumerate(spec.flexible.enumerated)
                   if list(s) != list(spec.shape)]
    else:
        def at(pick) -> list[int]:
            return [pick(spec.flexible.range[d], size) if d in spec.flexible.range else size
                    for d, size in enumerate(spec.shape)]

        top = lambda r, size: r[1] if r[1] != -1 else size * 2  # noqa: E731 - unbounded: twice the default
        shapes = [("min", at(lambda r, size: r[0])), ("default", list(spec.shape)), ("max", at(top)),
                  ("other", at(lambda r, size: _other(r[0], size, top(r, size))))]
    shapes += [(f"extra {i + 1}", list(s)) for i, s in enumerate(spec.flexible.test_shapes)]
    unique: dict[tuple[int, ...], str] = {}
    for label, shape in shapes:
        unique.setdefault(tuple(shape), label)
    return [(label, list(shape)) for shape, label in unique.items()]


def _other(low: int, default: int, high: int) -> int:
    """An allowed size that is neither the minimum, the default nor the maximum (odd if possible)."""
    candidate = (low + default) // 2 | 1 if default - low > 2 else (default + high) // 2 | 1
    return min(max(candidate, low), high)


def outside_shape(spec: Input) -> list[int] | None:
    """A shape the model must refuse (just past the declared sizes), or None when every size is allowed."""
    if spec.flexible is None:
        return None
    dims = flexible_dims(spec)
    shape = list(spec.shape)
    if spec.flexible.enumerated is not None:
        shape[dims[-1]] = max(s[dims[-1]] for s in spec.flexible.enumerated) + 1 if dims else shape[-1] + 1
        return None if allows(spec, shape) else shape
    for d in dims:
        low, high = spec.flexible.range[d]
        if high != -1:
            shape[d] = high + 1
            return shape
        if low > 1:
            shape[d] = low - 1
            return shape
    return None


def shape_sets(recipe: Recipe) -> list[tuple[str, dict[str, list[int]]]]:
    """Validation shape sets: label -> one shape per input (inputs without that label keep their default)."""
    per_input = {name: validation_shapes(spec) for name, spec in recipe.inputs.items()}
    labels: list[str] = []
    for shapes in per_input.values():
        labels += [label for label, _ in shapes if label not in labels]
    return [(label, {name: dict(shapes).get(label, list(recipe.inputs[name].shape))
                     for name, shapes in per_input.items()}) for label in labels]


def onnx_dynamic_axes(recipe: Recipe) -> dict[str, dict[int, str]]:
    """torch.onnx.export dynamic_axes for the flexible dimensions (named <input>_<dim>)."""
    return {name: {d: f"{name}_{d}" for d in flexible_dims(spec)}
            for name, spec in recipe.inputs.items() if flexible_dims(spec)}


def export_bounds(spec: Input) -> Bounds:
    """torch.export bounds of the flexible dimensions: the declared [min, max] (max -1: None), or for
    enumerated shapes the smallest and largest size of each dimension that varies."""
    if spec.flexible is None:
        return {}
    if spec.flexible.range is not None:
        return {d: (low, None if high == -1 else high) for d, (low, high) in sorted(spec.flexible.range.items())}
    return span([list(spec.shape), *spec.flexible.enumerated])


def recipe_export_bounds(recipe: Recipe) -> list[Bounds]:
    """export_bounds of every input, in forward()'s order."""
    return [export_bounds(spec) for spec in recipe.inputs.values()]
