"""Every registered runtime op has a test: read `pytest.mark.ops(...)` from the test files.

The marks are read statically (with `ast`) from every test file under tests/runtime/,
so a test that is skipped on this machine still counts. String arguments count, and
so do starred names of module-level tuples/lists/sets of strings or dicts keyed by
them (`*FFDNET_OPS`, `*BROADCASTABLE`).
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

from modelbuild.runtime.registry import OpRegistry

TESTS = Path(__file__).resolve().parent


def _module_constants(tree: ast.Module) -> dict[str, list[str]]:
    constants: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            items = node.value.keys if isinstance(node.value, ast.Dict) else node.value.elts
            values = [e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = values
    return constants


def _is_ops_mark(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "ops"
            and isinstance(func.value, ast.Attribute) and func.value.attr == "mark")


def covered_ops(folder: Path = TESTS) -> set[str]:
    """Every op name given to pytest.mark.ops in test files under `folder`."""
    names: set[str] = set()
    for path in sorted(folder.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_ops_mark(node.func):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.add(arg.value)
                    elif isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
                        names.update(constants.get(arg.value.id, []))
    return names


def registries() -> list[OpRegistry]:
    """The NeuralNetwork registry and the ML Program interpreter's registries."""
    found: list[OpRegistry] = []
    for module_name in ("modelbuild.runtime.nn", "modelbuild.runtime.mil"):
        module = importlib.import_module(module_name)
        found += [value for value in vars(module).values() if isinstance(value, OpRegistry)]
    return found


def test_reader_finds_marks_in_this_folder():
    ops = covered_ops()
    assert {"convolution", "activation", "pooling"} <= ops  # marks written in tests/runtime/nn/
    assert "tile" in ops  # given through *FFDNET_OPS in test_whole_models.py


def test_every_registered_op_has_a_test():
    covered = covered_ops()
    missing = {reg.kind: sorted(set(reg) - covered) for reg in registries()}
    missing = {kind: names for kind, names in missing.items() if names}
    assert not missing, "Registered ops without a test (add @pytest.mark.ops(...) to a test): " + "; ".join(
        f"{kind}: {', '.join(names)}" for kind, names in missing.items()
    )
