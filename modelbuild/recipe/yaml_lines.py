"""YAML loading that remembers where every value came from.

`load_with_lines(text)` returns the plain data and a map from each value's path
(a tuple of keys and indices) to its 1-based line, so that schema errors can
point at `recipes/x.yaml:14`. Duplicate mapping keys, which PyYAML silently
overwrites, are reported as errors.
"""
from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[Any, ...]


class YamlProblem(Exception):
    """A syntax error or duplicate key, with the 1-based line it was found on."""

    def __init__(self, line: int, message: str, path: Path_ = ()) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.path = path


def load_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML `text` into Python data plus a {path: line} map."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, f"invalid YAML: {err.problem or err}") from None
    lines: dict[Path_, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines), lines


def _build(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in result:
                raise YamlProblem(
                    key_node.start_mark.line + 1,
                    f"duplicate key {key!r} (first given on line {lines[path + (key,)]})",
                    path + (key,),
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlProblem(node.start_mark.line + 1, "mapping keys must be plain scalars")
    return yaml.SafeLoader("").construct_object(node, deep=True)
