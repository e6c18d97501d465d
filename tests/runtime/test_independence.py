"""The runtime stands alone: it imports nothing of modelbuild outside itself, and `import
modelbuild.runtime` loads none of the build system's tools (that no import cycle exists, in the
runtime or elsewhere, tests/test_import_contract.py checks).

Imports are read with ast from every module, function-level ones included (an import inside a
function couples the modules as much as one at the top).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from projects import REPO

RUNTIME = "modelbuild.runtime"
RUNTIME_ROOT = REPO / "modelbuild" / "runtime"


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join([package] + (parts[:-1] if parts[-1] == "__init__" else parts))


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, module: str, *, type_checking: bool = True) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) of every import in the file, relative ones resolved."""
    found: list[tuple[int, str, list[str]]] = []
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not type_checking and _type_checking_block(child):
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                target = ".".join(base + ([child.module] if child.module else []))
                found.append((child.lineno, target, [alias.name for alias in child.names]))
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def imports_outside(root: Path, package: str) -> list[str]:
    """'file:line: import X' for every import of modelbuild.* outside `package` by a module under `root`."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        for line, target, names in imports_of(path, module_name(path, root, package)):
            modules = [target] if target != "modelbuild" else [f"modelbuild.{name}" for name in names]
            for imported in modules:
                if imported.split(".")[0] == "modelbuild" and not (imported == package
                                                                   or imported.startswith(package + ".")):
                    problems.append(f"{path.relative_to(root.parent.parent)}:{line}: import {imported}")
    return problems


def test_the_runtime_imports_nothing_of_modelbuild_outside_itself():
    assert imports_outside(RUNTIME_ROOT, RUNTIME) == []


def test_the_check_finds_function_level_and_relative_imports(tmp_path):
    root = tmp_path / "modelbuild" / "runtime"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from modelbuild.runtime.sub import x\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "x.py").write_text("from .. import model\n\ndef f():\n    from modelbuild import quiet, runtime\n"
                                       "    from ... import atomic\n    import modelbuild.recipe.schema\n")
    assert imports_outside(root, RUNTIME) == [
        "modelbuild/runtime/sub/x.py:4: import modelbuild.quiet",
        "modelbuild/runtime/sub/x.py:5: import modelbuild.atomic",
        "modelbuild/runtime/sub/x.py:6: import modelbuild.recipe.schema",
    ]


def test_importing_the_runtime_loads_none_of_the_build_systems_tools():
    """Importing the runtime and reading its source digest (as the build system does while it creates
    tasks) leaves out pydantic, doit, onnx, and also numpy, torch and coremltools (each public name
    loads its module on first use)."""
    script = ("import sys, modelbuild.runtime as runtime; runtime.source_digest(); "
              "print(sorted(m for m in ('pydantic', 'doit', 'onnx', 'numpy', 'torch', 'coremltools') "
              "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0] == "[]"


def test_every_public_name_resolves_and_unknown_names_raise():
    import modelbuild.runtime as runtime

    assert {name: getattr(runtime, name).__module__.startswith(RUNTIME + ".") for name in runtime.__all__} == {
        name: True for name in runtime.__all__}
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        runtime.no_such_name  # noqa: B018
