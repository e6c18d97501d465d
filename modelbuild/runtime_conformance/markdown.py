"""A conformance run as Markdown tables, for docs/conformance.md (`--markdown PATH`)."""
from __future__ import annotations

from collections import Counter

from modelbuild.runtime_conformance.report import grouping_keys
from modelbuild.runtime_conformance.results import Summary, Tally, collect_error_reason


def _rate(tally: Tally) -> str:
    return "-" if tally.pass_rate is None else f"{100 * tally.pass_rate:.1f}%"


def _table(title: str, rows: list[tuple[str, Tally]]) -> list[str]:
    lines = [f"| {title} | reached predict | passed | failed | pass rate | failed before predict "
             "| passed without predict | skipped |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {t.reached} | {t.passed} | {t.failed} | {_rate(t)} | {t.early_failed} "
              f"| {t.early_passed} | {t.skipped} |" for name, t in rows]
    return lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(summary: Summary, suite_name: str, top: int = 15) -> str:
    """Overall figures, the per-file table, the failing op classes and the top reasons."""
    keys = grouping_keys(suite_name)
    overall = summary.overall
    with_kernels = summary.pass_rate_with_kernels
    lines = [
        f"*{_escape(summary.description)}; {summary.seconds:.0f} s.*", "",
        *_table("all", [("all tests run", overall)]), "",
        f"Of the {overall.failed} failures after predict, {summary.missing_kernel_failures} are missing kernels "
        f"(`UnsupportedOpError`); the pass rate without them is "
        f"{'-' if with_kernels is None else f'{100 * with_kernels:.1f}%'}."
        + (f" {summary.not_run} selected tests did not run (time limit)." if summary.not_run else ""), "",
        *[f"Could not collect `{path}` (its tests are not counted): "
          f"{_escape(collect_error_reason(message))}" + "\n"
          for path, message in summary.collect_errors.items()],
        *_table("test file", list(summary.tally(keys["per_file"]).items())), "",
    ]
    per_class = summary.tally(keys["per_class"])
    failing = sorted(((name, t) for name, t in per_class.items() if t.failed),
                     key=lambda item: (-item[1].failed, item[0]))
    passing = sum(1 for t in per_class.values() if t.reached and not t.failed)
    lines += [f"{len(per_class)} op classes; {passing} passed every test that reached predict; "
              f"{len(failing)} had failures:", "", *_table("op class", failing), ""]
    reasons: Counter = summary.reasons("failed")
    if reasons:
        lines += [f"Top failing reasons after predict ({len(reasons)} distinct):", "",
                  "| tests | reason |", "|---:|---|"]
        lines += [f"| {count} | {_escape(reason)} |" for reason, count in reasons.most_common(top)]
        lines.append("")
    early = summary.reasons("early_failed")
    if early:
        lines += ["Failures before predict:", "", "| tests | reason |", "|---:|---|"]
        lines += [f"| {count} | {_escape(reason)} |" for reason, count in early.most_common(top)]
        lines.append("")
    return "\n".join(lines)

