"""Where coremltools' test suites live in the wheel, and how to pick tests from them.

Two suites: `mil` (MIL op tests, `converters/mil/mil/ops/tests/iOS14..iOS18`,
Apple's expected values written in numpy) and `torch` (torch frontend op tests,
`converters/mil/frontend/torch/test/test_torch_ops.py`, expected values from
torch). Node ids are relative to the directory that holds the `coremltools`
package (the runner passes it as pytest's rootdir), e.g.
`coremltools/converters/mil/mil/ops/tests/iOS14/test_conv.py::TestConv::test_x[...]`.
"""
from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Suite:
    """One of coremltools' shipped test suites."""

    name: str
    root: str  # relative to the coremltools package directory
    default_files: tuple[str, ...]  # globs relative to `root`


SUITES: dict[str, Suite] = {
    "mil": Suite("mil", "converters/mil/mil/ops/tests", ("iOS1[4-8]/test_*.py",)),
    "torch": Suite("torch", "converters/mil/frontend/torch/test", ("test_torch_ops.py",)),
}


def coremltools_site_dir() -> Path:
    """The directory that contains the installed `coremltools` package (pytest's rootdir)."""
    import importlib.util

    spec = importlib.util.find_spec("coremltools")
    if spec is None or spec.origin is None:
        raise RuntimeError("coremltools is not installed, so its test suites cannot be run.")
    return Path(spec.origin).parent.parent


def get_suite(name: str) -> Suite:
    """The suite called `name`, or a ValueError listing the suites."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(
            f"Unknown conformance suite {name!r}; expected one of {', '.join(sorted(SUITES))}."
        ) from None


def suite_files(suite: Suite, globs: Sequence[str] | None = None) -> list[Path]:
    """The suite's test files matching `globs` (relative to the suite root), sorted."""
    root = coremltools_site_dir() / "coremltools" / suite.root
    patterns = tuple(globs) if globs else suite.default_files
    files = sorted(
        {path for pattern in patterns for path in root.glob(pattern) if path.is_file()}
    )
    if not files:
        raise ValueError(
            f"No test file of the {suite.name} suite matches {', '.join(patterns)} "
            f"(globs are relative to {root}, e.g. {suite.default_files[0]!r})."
        )
    return files


def file_of(nodeid: str, suite: Suite) -> str:
    """The test file of `nodeid`, relative to the suite root (e.g. `iOS14/test_conv.py`)."""
    path = nodeid.split("::", 1)[0]
    prefix = f"coremltools/{suite.root}/"
    return path[len(prefix):] if path.startswith(prefix) else path


def class_of(nodeid: str) -> str:
    """The test class of `nodeid` (e.g. `TestConv`), or `(module)` for a module-level test."""
    parts = nodeid.split("::")
    return parts[1] if len(parts) >= 3 else "(module)"


def filter_classes(node_ids: Iterable[str], classes: Iterable[str] | None,
                   exclude: Iterable[str] | None = None) -> list[str]:
    """The node ids whose test class matches one of the `classes` globs (all if None)
    and none of the `exclude` globs."""
    keep, drop = list(classes or ()), list(exclude or ())

    def matches(nodeid: str, patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(class_of(nodeid), pattern) for pattern in patterns)

    return [
        nodeid for nodeid in node_ids
        if (not keep or matches(nodeid, keep)) and not matches(nodeid, drop)
    ]


def sample_node_ids(node_ids: Iterable[str], size: int | None, seed: int,
                    per_class: int | None = None) -> list[str]:
    """A deterministic sample: sort, draw with random.Random(seed), sort again.

    With `per_class`, first keep at most that many tests of each test class of
    each file (drawn in sorted class order with the same generator), so that
    every op class is represented; then draw `size` of those. The same
    collection, arguments and seed always give the same tests; `size` None or
    larger than what is left returns everything (sorted).
    """
    for name, value in (("sample size", size), ("per-class count", per_class)):
        if value is not None and value < 0:
            raise ValueError(f"The {name} must be a positive number of tests, not {value}.")
    generator = random.Random(seed)
    ordered = sorted(set(node_ids))
    if per_class is not None:
        groups: dict[str, list[str]] = {}
        for nodeid in ordered:
            groups.setdefault(nodeid.rsplit("::", 1)[0], []).append(nodeid)
        ordered = sorted(
            nodeid for _, members in sorted(groups.items())
            for nodeid in (members if len(members) <= per_class else generator.sample(members, per_class))
        )
    if size is None or size >= len(ordered):
        return ordered
    return sorted(generator.sample(ordered, size))
