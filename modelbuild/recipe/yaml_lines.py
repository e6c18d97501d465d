"""YAML loading that remembers where every value came from, and refuses what a recipe cannot hold.

`load_with_lines(text)` returns the plain data and a map from each value's path (a tuple of
keys and indices) to its 1-based line, so that schema errors can point at `recipes/x.yaml:14`.
Whatever the text, it raises nothing but `YamlProblem` (one line, with the line number):
syntax errors, control characters, duplicate keys (PyYAML silently keeps the last), merge keys,
tags beyond plain strings, numbers, booleans, null, lists and mappings, nesting deeper than
MAX_DEPTH and alias expansion beyond MAX_VALUES values (a "billion laughs" recipe is refused in
milliseconds instead of filling the memory).
"""
from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[Any, ...]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: linear time on nesting bombs, where PyYAML is not
MAX_DEPTH = 50
MAX_VALUES = 20_000  # a recipe holds about a hundred
_CORE = "tag:yaml.org,2002:"
_PLAIN_SCALARS = {f"{_CORE}{kind}" for kind in ("str", "int", "float", "bool", "null")}


class YamlProblem(Exception):
    """A problem in the YAML text, with the 1-based line it was found on."""

    def __init__(self, line: int, message: str, path: Path_ = ()) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.path = path


def load_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML `text` into Python data plus a {path: line} map."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise YamlProblem(mark.line + 1 if mark else 1, f"invalid YAML: {err.problem or err}") from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (control characters, ...)
        line = text.count("\n", 0, max(err.position, 0)) + 1
        code = err.character if isinstance(err.character, int) else ord(err.character or "\0")
        raise YamlProblem(line, f"invalid YAML: character U+{code:04X} is not allowed in a recipe") from None
    except yaml.YAMLError as err:
        raise YamlProblem(1, f"invalid YAML: {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise YamlProblem(1, f"the YAML is nested too deeply (a recipe needs at most {MAX_DEPTH} levels)") from None
    lines: dict[Path_, int] = {}
    if node is None:
        return None, lines
    return _Builder(lines).build(node, ()), lines


class _Builder:
    """Turns composed YAML nodes into plain data, counting values and depth as it goes."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self.lines = lines
        self.values = 0
        self.constructor = yaml.SafeLoader("")  # one for the whole document: making one is slow

    def build(self, node: yaml.Node, path: Path_) -> Any:
        line = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:
            raise YamlProblem(line, f"the recipe expands to more than {MAX_VALUES} values (through YAML aliases?)")
        if len(path) > MAX_DEPTH:
            raise YamlProblem(line, f"values nested more than {MAX_DEPTH} levels deep", path)
        self.lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            _check_tag(node, f"{_CORE}seq", "a list")
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return _scalar(node, self.constructor)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        _check_tag(node, f"{_CORE}map", "a mapping")
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == f"{_CORE}merge":
                raise YamlProblem(line, "merge keys (<<) are not supported in recipes; write the keys out", path)
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem(line, "mapping keys must be plain scalars", path)
            key = _scalar(key_node, self.constructor)
            if key in result:
                raise YamlProblem(line, f"duplicate key {_short(key)} (first given on line {self.lines[path + (key,)]})",
                                  path + (key,))
            self.lines[path + (key,)] = line
            result[key] = self.build(value_node, path + (key,))
            self.lines[path + (key,)] = line
        return result


def _check_tag(node: yaml.Node, expected: str, kind: str) -> None:
    if node.tag != expected:
        raise YamlProblem(node.start_mark.line + 1, f"tag {_tag(node.tag)} is not supported; write {kind} without it")


def _scalar(node: yaml.ScalarNode, constructor: yaml.SafeLoader) -> Any:
    """A plain scalar's value; dates stay the text they were written as; other tags are refused."""
    if node.tag == f"{_CORE}timestamp":
        return node.value
    if node.tag not in _PLAIN_SCALARS:
        raise YamlProblem(node.start_mark.line + 1, f"tag {_tag(node.tag)} is not supported; recipes hold plain "
                                                    "strings, numbers, booleans and null")
    try:
        return constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as err:
        raise YamlProblem(node.start_mark.line + 1, f"invalid value {_short(node.value)}: {err}") from None


def _tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else _short(tag)


def _short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters: error lines stay readable whatever the recipe holds."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
