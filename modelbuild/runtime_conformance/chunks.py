"""Split a collected suite into chunks: the units a full run runs, stores and resumes.

Every pytest run pays ~15-25 s of start-up (torch, coremltools, collecting the
test module) before its first test, so a chunk should hold a few hundred tests;
and a chunk lost to a kill is run again from its start, so not many more.
`plan_chunks` keeps a test file whole when it has at most `size` tests and
otherwise splits it by test class, a class of more than `size` tests into
equal parts (`iOS14/test_recurrent.py::TestLSTM[2/5]`); then it packs
consecutive small files or classes together up to `size` tests
(`test_torch_ops.py::TestAbs..TestAddmm`). The same node ids and size always
give the same chunks.
"""
from __future__ import annotations

import fnmatch
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Iterable

from modelbuild.runtime_conformance.suites import Suite, class_of, file_of


@dataclass(frozen=True)
class Chunk:
    """Consecutive tests of a suite that one pytest run covers."""

    name: str  # e.g. "iOS14/test_conv.py", "test_torch_ops.py::TestAbs..TestAddmm", "...::TestLSTM[2/5]"
    node_ids: tuple[str, ...]

    @property
    def slug(self) -> str:
        """The name as a file name (state and log files)."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.name).strip("-")

    @property
    def key(self) -> str:
        """A digest of the chunk's node ids: a stored result counts only for the same tests."""
        return hashlib.sha256("\0".join(self.node_ids).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class _Unit:
    """A whole small file, a class of a large file, or a part of a very large class."""

    file: str
    label: str  # the file, "file::Class" or "file::Class[i/n]"
    node_ids: tuple[str, ...]
    alone: bool  # a part of a class: never packed with others


def _units(node_ids: list[str], suite: Suite, size: int) -> list[_Unit]:
    per_file: dict[str, list[str]] = {}
    for nodeid in node_ids:
        per_file.setdefault(file_of(nodeid, suite), []).append(nodeid)
    units: list[_Unit] = []
    for path, members in sorted(per_file.items()):
        if len(members) <= size:
            units.append(_Unit(path, path, tuple(members), False))
            continue
        per_class: dict[str, list[str]] = {}
        for nodeid in members:
            per_class.setdefault(class_of(nodeid), []).append(nodeid)
        for name, tests in sorted(per_class.items()):
            label = f"{path}::{name}"
            if len(tests) <= size:
                units.append(_Unit(path, label, tuple(tests), False))
                continue
            parts = math.ceil(len(tests) / size)
            bounds = [round(i * len(tests) / parts) for i in range(parts + 1)]
            units += [_Unit(path, f"{label}[{i + 1}/{parts}]", tuple(tests[bounds[i]:bounds[i + 1]]), True)
                      for i in range(parts)]
    return units


def _packed_name(units: list[_Unit]) -> str:
    first, last = units[0].label, units[-1].label
    if len(units) == 1:
        return first
    if units[0].file == units[-1].file and "::" in last:
        last = last.split("::", 1)[1]  # test_torch_ops.py::TestAbs..TestAddmm
    return f"{first}..{last}"


def plan_chunks(node_ids: Iterable[str], suite: Suite, size: int) -> list[Chunk]:
    """The chunks of `node_ids` (sorted first), each of at most `size` tests."""
    if size < 1:
        raise ValueError(f"The chunk size must be at least 1 test, not {size}.")
    chunks: list[Chunk] = []
    pending: list[_Unit] = []

    def flush() -> None:
        if pending:
            chunks.append(Chunk(_packed_name(pending), tuple(n for unit in pending for n in unit.node_ids)))
            pending.clear()

    for unit in _units(sorted(set(node_ids)), suite, size):
        if unit.alone or sum(len(u.node_ids) for u in pending) + len(unit.node_ids) > size:
            flush()
        pending.append(unit)
        if unit.alone:
            flush()
    flush()
    return chunks


def chunk_matches(chunk: Chunk, pattern: str, suite: Suite) -> bool:
    """Does `pattern` name the chunk (exactly: names hold brackets, `[2/5]`, which globs read as a
    character set), or match as a glob its name, a test file or `file::Class` of one of its tests?"""
    if pattern in (chunk.name, chunk.slug):
        return True
    if fnmatch.fnmatchcase(chunk.name, pattern) or fnmatch.fnmatchcase(chunk.slug, pattern):
        return True
    for nodeid in chunk.node_ids:
        path, name = file_of(nodeid, suite), class_of(nodeid)
        if any(fnmatch.fnmatchcase(text, pattern) for text in (path, name, f"{path}::{name}")):
            return True
    return False
