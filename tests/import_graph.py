"""modelbuild's import graph as Python runs it, read from the source (nothing is imported).

Every import statement counts, at module level or inside a function, except those under
`if TYPE_CHECKING:` (they never run). Importing `a.b.c` also runs the `__init__` of each
package on the way (`a.b`) that the importer is not itself inside: a module that imports
`modelbuild.recipe.schema` runs `modelbuild/recipe/__init__.py` first, and whatever that
imports.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

Graph = dict[str, dict[str, list[int]]]  # importer -> imported -> line numbers


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the package folder `package`."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(package: Path) -> Graph:
    """The imports between the modules of the package folder `package` (a package name's imports only)."""
    modules = module_files(package)
    graph: Graph = {name: defaultdict(list) for name in modules}
    for importer, path in modules.items():
        is_package = path.name == "__init__.py"
        for line, target in _imports(ast.parse(path.read_text(encoding="utf-8")), importer, is_package):
            for imported in _run_by(target, importer, modules):
                graph[importer][imported].append(line)
    return {importer: {imported: sorted(set(lines)) for imported, lines in targets.items()}
            for importer, targets in graph.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """The import cycles: every strongly connected group of two or more modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.get(module, {}):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def describe_cycle(graph: Graph, group: list[str]) -> str:
    """One cycle as lines 'importer -> imported (line N)', for a test failure."""
    members = set(group)
    return "\n".join(f"  {importer} -> {imported} (line {', '.join(map(str, lines))})"
                     for importer in group for imported, lines in sorted(graph[importer].items())
                     if imported in members)


def _imports(tree: ast.Module, importer: str, is_package: bool):
    """(line, dotted name) of every import that runs: `import a.b` names a.b; `from a import b` names a.b
    (a submodule, or an attribute of a: `_run_by` tells)."""
    for node in _running_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = importer.split(".") if is_package else importer.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _running_nodes(node: ast.AST):
    """Every node under `node`, skipping the bodies of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield other
                yield from _running_nodes(other)
            continue
        yield child
        yield from _running_nodes(child)


def _run_by(target: str, importer: str, modules: dict[str, Path]) -> list[str]:
    """The package modules that importing `target` from `importer` runs: the target (or the module it is an
    attribute of) and each package on its way, except `importer` itself and the packages it is inside (they
    are being imported already)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    parts = target.split(".") if target else []
    packages = [".".join(parts[:depth]) for depth in range(1, len(parts) + 1)]  # outermost first, target last
    return [name for name in packages if name != importer and not importer.startswith(name + ".")]
