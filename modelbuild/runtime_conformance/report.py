"""The printed and JSON report of a conformance run: overall, per file, per op class, reasons."""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from modelbuild.runtime_conformance.results import (
    Summary,
    TestRecord,
    format_overall,
    format_reasons,
    format_table,
    is_missing_kernel,
    normalise_reason,
)
from modelbuild.runtime_conformance.suites import class_of, file_of, get_suite


def grouping_keys(suite_name: str) -> dict[str, Callable[[TestRecord], str]]:
    """The groupings of the report: per test file (relative to the suite root) and per op class."""
    suite = get_suite(suite_name)
    return {
        "per_file": lambda record: file_of(record.nodeid, suite),
        "per_class": lambda record: class_of(record.nodeid),
    }


def format_failing_classes(summary: Summary, limit: int) -> str:
    """Op classes with failures after predict, most failures first, each with its top reasons."""
    per_class: dict[str, Counter] = {}
    for record in summary.records:
        if record.category == "failed":
            per_class.setdefault(class_of(record.nodeid), Counter())[normalise_reason(record.message)] += 1
    if not per_class:
        return "Op classes failing after predict: none"
    ranked = sorted(per_class.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    lines = [f"Op classes failing after predict ({len(ranked)}; top {limit}, with their main reasons):"]
    for name, reasons in ranked[:limit]:
        lines.append(f"  {sum(reasons.values()):>6}  {name}")
        lines += [f"          {count:>4} x {reason}" for reason, count in reasons.most_common(2)]
    return "\n".join(lines)


_PARAMETER_NOISE = (
    (re.compile(r"compute_unit=ComputeUnit\.CPU_ONLY-?"), ""),
    (re.compile(r"frontend=TorchFrontend\.TORCHSCRIPT-?"), ""),
    (re.compile(r"backend=BackendConfig\(backend='(\w+)', precision='(\w+)', "
                r"opset_version=<AvailableTarget\.(\w+): \d+>\)"), r"\1/\2/\3"),
    (re.compile(r"backend=\('(\w+)', '(\w+)'\)"), r"\1/\2"),
)


def short_test_name(nodeid: str, suite_name: str, limit: int = 140) -> str:
    """`file::Class::test[params]` relative to the suite, without the parameters every test shares."""
    name = f"{file_of(nodeid, get_suite(suite_name))}::{nodeid.split('::', 1)[-1]}"
    for pattern, replacement in _PARAMETER_NOISE:
        name = pattern.sub(replacement, name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def format_wrong_answers(summary: Summary, suite_name: str, limit: int) -> str:
    """Tests that reached predict and failed for another reason than a missing kernel (bugs to debug)."""
    wrong = [record for record in summary.records
             if record.category == "failed" and not is_missing_kernel(record.message)]
    if not wrong:
        return "Failures after predict other than missing kernels: none"
    lines = [f"Failures after predict other than missing kernels ({len(wrong)}; the first {limit}):"]
    for record in wrong[:limit]:
        lines.append(f"  {short_test_name(record.nodeid, suite_name)}\n      {normalise_reason(record.message)}")
    return "\n".join(lines)


def format_summary(summary: Summary, suite_name: str, top: int = 15) -> str:
    """The human-readable report of `summary`."""
    keys = grouping_keys(suite_name)
    sections = [
        format_overall(summary),
        format_table("test file", summary.tally(keys["per_file"])),
        format_table("op class", summary.tally(keys["per_class"])),
        format_reasons("Failing reasons after predict (the runtime's to-do list)", summary.reasons("failed"), top),
        format_failing_classes(summary, top),
        format_wrong_answers(summary, suite_name, top),
        format_reasons("Failures before predict (coremltools on Linux, conversion)",
                       summary.reasons("early_failed"), top),
        format_reasons("Skip reasons", summary.reasons("skipped"), min(top, 8)),
    ]
    return "\n\n".join(sections)


def summary_json(summary: Summary, suite_name: str) -> dict:
    """The figures of `summary` as plain data (for --json and the docs)."""
    return summary.to_json(grouping_keys(suite_name))
