"""The printed and JSON report of a conformance run: overall, per file, per op class, reasons."""
from __future__ import annotations

from typing import Callable

from modelbuild.runtime.conformance.results import (
    Summary,
    TestRecord,
    format_overall,
    format_reasons,
    format_table,
)
from modelbuild.runtime.conformance.suites import class_of, file_of, get_suite


def grouping_keys(suite_name: str) -> dict[str, Callable[[TestRecord], str]]:
    """The groupings of the report: per test file (relative to the suite root) and per op class."""
    suite = get_suite(suite_name)
    return {
        "per_file": lambda record: file_of(record.nodeid, suite),
        "per_class": lambda record: class_of(record.nodeid),
    }


def format_summary(summary: Summary, suite_name: str, top: int = 15) -> str:
    """The human-readable report of `summary`."""
    keys = grouping_keys(suite_name)
    sections = [
        format_overall(summary),
        format_table("test file", summary.tally(keys["per_file"])),
        format_table("op class", summary.tally(keys["per_class"])),
        format_reasons("Failing reasons after predict (the runtime's to-do list)", summary.reasons("failed"), top),
        format_reasons("Failures before predict (coremltools on Linux, conversion)",
                       summary.reasons("early_failed"), top),
        format_reasons("Skip reasons", summary.reasons("skipped"), min(top, 8)),
    ]
    return "\n\n".join(sections)


def summary_json(summary: Summary, suite_name: str) -> dict:
    """The figures of `summary` as plain data (for --json and the docs)."""
    return summary.to_json(grouping_keys(suite_name))
