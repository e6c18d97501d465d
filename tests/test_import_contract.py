"""Imports flow one way: pyproject.toml's import-linter contracts hold, and no module import cycle exists.

The cycle checks read the source (tests/import_graph.py) and count every import that runs,
inside functions too; the contracts are run by import-linter (`lint-imports`, the test extra).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from import_graph import cycles, describe_cycle, import_graph
from projects import REPO

PYPROJECT = REPO / "pyproject.toml"
CONTRACTS = [contract["id"] for contract in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]]


@pytest.mark.parametrize("contract", CONTRACTS)
def test_import_contract(contract):
    if importlib.util.find_spec("importlinter") is None:
        pytest.skip("import-linter is not installed: pip install -e '.[test]' (it checks pyproject.toml's "
                    "[tool.importlinter] contracts)")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--config", str(PYPROJECT), "--contract", contract, "--no-cache", "--no-logo"],
        cwd=REPO, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, f"contract {contract!r} is broken:\n{result.stdout}{result.stderr}"


def test_no_import_cycle():
    """Counting function-level imports and package __init__s, in the build system and in the runtime."""
    graph = import_graph(REPO / "modelbuild")
    found = list(cycles(graph))
    assert not found, "import cycles (each line: importer -> imported):\n" + "\n\n".join(
        describe_cycle(graph, group) for group in found)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "pkg"


def test_the_graph_counts_imports_inside_functions_and_package_inits(tmp_path):
    package = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "from pkg.low.schema import Thing\nfrom pkg.low import checks\n",
        "pkg/low/schema.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import User\n",
        "pkg/low/checks.py": "def check():\n    from pkg.high import use\n    return use\n",
        "pkg/high.py": "from .low.schema import Thing\n\ndef use():\n    import pkg.leaf\n",
        "pkg/leaf.py": "import os\n",
    })
    graph = import_graph(package)
    assert graph["pkg.low.checks"] == {"pkg.high": [2]}  # inside a function
    assert graph["pkg.high"] == {"pkg.low": [1], "pkg.low.schema": [1], "pkg.leaf": [4]}  # relative; the package
    assert graph["pkg.low.schema"] == {}  # `if TYPE_CHECKING:` never runs
    assert graph["pkg.low"] == {"pkg.low.schema": [1], "pkg.low.checks": [2]}  # not itself
    # pkg.high -> pkg.low runs pkg/low/__init__.py, which imports checks, whose function imports pkg.high
    assert cycles(graph) == [["pkg.high", "pkg.low", "pkg.low.checks"]]
    assert describe_cycle(graph, cycles(graph)[0]).splitlines() == [
        "  pkg.high -> pkg.low (line 1)", "  pkg.low -> pkg.low.checks (line 2)", "  pkg.low.checks -> pkg.high (line 2)"]


def test_a_graph_without_cycles_has_none(tmp_path):
    package = _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "def f():\n    from pkg import b\n",
                                "pkg/b.py": "from pkg.c import x\n", "pkg/c.py": "x = 1\n"})
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.b": [2]} and graph["pkg.b"] == {"pkg.c": [1]}
    assert cycles(graph) == []
