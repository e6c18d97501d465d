"""Turn per-test records into conformance figures: pass rates and grouped failure reasons.

Only tests that reached `MLModel.predict` (routed to the runtime) judge the
runtime. A test that failed earlier (conversion, a coremltools limitation on
Linux, a missing package) says nothing about it and is counted apart as "did
not reach predict"; so is a test that passed without ever predicting (type
inference or frontend-only checks).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

#: Outcomes of a test, as the plugin and the runner write them.
FAILING_OUTCOMES = frozenset({"failed", "error", "crashed", "timeout"})
PASSING_OUTCOMES = frozenset({"passed", "xpassed"})
ERROR_OUTCOMES = frozenset({"error", "crashed"})


@dataclass(frozen=True)
class TestRecord:
    """What happened to one test."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: str  # passed failed error skipped xfailed xpassed crashed timeout
    reached: bool
    message: str = ""
    duration: float = 0.0

    @property
    def category(self) -> str:
        """passed / failed (after predict), early_failed / early_passed (before), skipped."""
        if self.outcome in FAILING_OUTCOMES:
            return "failed" if self.reached else "early_failed"
        if self.outcome in PASSING_OUTCOMES:
            return "passed" if self.reached else "early_passed"
        return "skipped"


@dataclass
class Tally:
    """Counts of the categories of `TestRecord` for a group of tests."""

    passed: int = 0
    failed: int = 0
    early_failed: int = 0
    early_passed: int = 0
    skipped: int = 0
    errored: int = 0  # of the failures (either kind): setup/teardown errors and crashes

    def add(self, record: TestRecord) -> None:
        setattr(self, record.category, getattr(self, record.category) + 1)
        if record.outcome in ERROR_OUTCOMES:
            self.errored += 1

    @property
    def reached(self) -> int:
        return self.passed + self.failed

    @property
    def total(self) -> int:
        return self.reached + self.early_failed + self.early_passed + self.skipped

    @property
    def pass_rate(self) -> float | None:
        """Passed / reached predict, or None when no test reached predict."""
        return self.passed / self.reached if self.reached else None


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_GENERATED_NAME = re.compile(r"\b([A-Za-z]+(?:_[A-Za-z]+)*)_\d+\b")
_SUPPORTED_LIST = re.compile(r"\s*Supported:.*$")
_QUALIFIED_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*:)")
_REASON_LIMIT = 200


def _drop_locations(text: str) -> str:
    """Remove parenthesised locations such as ` (in conv op 'conv_0' (tensor<fp32, [1, 2]>))`."""
    while True:
        match = re.search(r"\s*\((?:in|at) ", text)
        if match is None:
            return text
        depth, end = 0, len(text)
        for index in range(match.end() - 4, len(text)):
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            if depth == 0:
                end = index + 1
                break
        text = text[: match.start()] + text[end:]


def is_missing_kernel(message: str) -> bool:
    """Did the runtime refuse the model for an op it has no kernel for (UnsupportedOpError)?"""
    return normalise_reason(message).startswith("UnsupportedOpError:")


def normalise_reason(message: str) -> str:
    """The first informative line of a failure, with the test-specific details removed.

    `AssertionError: ` followed by numpy's report becomes `AssertionError: Not
    equal to tolerance rtol=N, atol=N`; numbers become N, generated names such
    as `var_12` become `var_N`, a trailing `(in <layer>)` and a registry's
    `Supported: ...` list are dropped, exception classes lose their module
    path, so equal causes group together. numpy's `Items are not equal:` keeps
    its ACTUAL / DESIRED lines (usually a rank or a shape).
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    first, used = lines[0], 1
    if re.fullmatch(r"[\w.]+:", first) and len(lines) > 1:
        first, used = f"{first} {lines[1]}", 2
    # numpy's assert_equal ("Items are not equal:") says what differs on the next two lines,
    # e.g. the ranks of a shape: keep them verbatim.
    detail = " ".join(lines[used:used + 2]) if first.endswith("Items are not equal:") else ""
    first = _QUALIFIED_EXCEPTION.sub(r"\1", first)
    first = _SUPPORTED_LIST.sub("", first)
    first = _drop_locations(first)
    first = _HEX.sub("0xN", first)
    first = _GENERATED_NAME.sub(r"\1_N", first)
    first = _NUMBER.sub("N", first)
    if detail:
        first = f"{first} {detail}"
    if len(first) > _REASON_LIMIT:
        first = first[: _REASON_LIMIT - 1] + "…"
    return first


def collect_error_reason(message: str) -> str:
    """Why a test file could not be collected: the last line of pytest's report (the exception), normalised."""
    lines = message.strip().splitlines()
    return normalise_reason(lines[-1] if lines else "")


@dataclass
class Summary:
    """Conformance figures of one run."""

    records: list[TestRecord]
    collect_errors: dict[str, str] = field(default_factory=dict)  # file -> message
    not_run: int = 0  # selected but never run (time limit reached)
    seconds: float = 0.0
    description: str = ""
    commit: str = "unknown"  # HEAD when the run started (first..last if it moved during the run)

    def tally(self, key: Callable[[TestRecord], str] | None = None) -> dict[str, Tally]:
        """Tallies per `key(record)` (one overall tally, under "all", without a key)."""
        tallies: dict[str, Tally] = {}
        for record in self.records:
            tallies.setdefault(key(record) if key else "all", Tally()).add(record)
        return dict(sorted(tallies.items()))

    @property
    def overall(self) -> Tally:
        return self.tally().get("all", Tally())

    @property
    def missing_kernel_failures(self) -> int:
        """Tests that reached predict and failed because the runtime has no kernel for an op."""
        return sum(1 for record in self.records
                   if record.category == "failed" and is_missing_kernel(record.message))

    @property
    def pass_rate_with_kernels(self) -> float | None:
        """The pass rate among reached tests that did not fail for a missing kernel."""
        judged = self.overall.reached - self.missing_kernel_failures
        return self.overall.passed / judged if judged else None

    def reasons(self, category: str) -> Counter:
        """Normalised messages of the tests in `category`, with counts."""
        return Counter(
            normalise_reason(record.message) for record in self.records if record.category == category
        )

    def to_json(self, key_functions: dict[str, Callable[[TestRecord], str]]) -> dict:
        """Figures as plain data: overall, per grouping in `key_functions`, reasons."""
        def figures(tally: Tally) -> dict:
            data = asdict(tally)
            data.update(reached=tally.reached, total=tally.total, pass_rate=tally.pass_rate)
            return data

        return {
            "description": self.description,
            "commit": self.commit,
            "seconds": round(self.seconds, 1),
            "not_run": self.not_run,
            "overall": figures(self.overall),
            "missing_kernel_failures": self.missing_kernel_failures,
            "pass_rate_with_kernels": self.pass_rate_with_kernels,
            **{
                name: {group: figures(t) for group, t in self.tally(key).items()}
                for name, key in key_functions.items()
            },
            "failing_reasons": dict(self.reasons("failed").most_common()),
            "early_failing_reasons": dict(self.reasons("early_failed").most_common()),
            "skip_reasons": dict(self.reasons("skipped").most_common()),
            "collect_errors": self.collect_errors,
        }


def read_records(path: Path) -> tuple[list[TestRecord], dict[str, str], list[str], str | None]:
    """Parse the plugin's JSON-lines file.

    Returns the finished tests, the collection errors (file -> message), the
    node ids that reached predict, and the last test that started without
    finishing (a crash or a kill), if any.
    """
    records: list[TestRecord] = []
    collect_errors: dict[str, str] = {}
    reached: list[str] = []
    unfinished: str | None = None
    if not path.exists():
        return records, collect_errors, reached, unfinished
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        event = entry.pop("event")
        if event == "start":
            unfinished = entry["nodeid"]
        elif event == "reached":
            reached.append(entry["nodeid"])
        elif event == "result":
            records.append(TestRecord(**entry))
            unfinished = None
        elif event == "collect_error":
            collect_errors[entry["nodeid"]] = entry["message"]
    return records, collect_errors, reached, unfinished


def format_table(title: str, tallies: dict[str, Tally], limit: int | None = None) -> str:
    """A fixed-width table of tallies, one row per group (most-reached first if limited)."""
    rows = list(tallies.items())
    if limit is not None and len(rows) > limit:
        rows = sorted(rows, key=lambda item: -item[1].total)[:limit]
        title = f"{title} (the {limit} largest)"
    width = max([len(name) for name, _ in rows] + [len(title)])
    header = (f"{title:<{width}}  {'reached':>7} {'passed':>6} {'failed':>6} {'rate':>6}"
              f"  {'early-fail':>10} {'no-predict':>10} {'skipped':>7} {'errored':>7}")
    lines = [header, "-" * len(header)]
    for name, t in rows:
        rate = "-" if t.pass_rate is None else f"{100 * t.pass_rate:.1f}%"
        lines.append(f"{name:<{width}}  {t.reached:>7} {t.passed:>6} {t.failed:>6} {rate:>6}"
                     f"  {t.early_failed:>10} {t.early_passed:>10} {t.skipped:>7} {t.errored:>7}")
    return "\n".join(lines)


def format_reasons(title: str, reasons: Counter, limit: int) -> str:
    """The `limit` most frequent reasons, one per line with its count."""
    if not reasons:
        return f"{title}: none"
    lines = [f"{title} ({sum(reasons.values())} tests, {len(reasons)} distinct; top {limit}):"]
    lines += [f"  {count:>6}  {reason}" for reason, count in reasons.most_common(limit)]
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f}%"


def format_overall(summary: Summary) -> str:
    """The headline: how many tests reached predict and how many of those passed."""
    t = summary.overall
    rate = "n/a (no test reached predict)" if t.pass_rate is None else f"{100 * t.pass_rate:.1f}%"
    lines = [
        summary.description,
        f"ran {t.total} tests in {summary.seconds:.0f} s"
        + (f"; {summary.not_run} selected tests not run (time limit)" if summary.not_run else ""),
        f"reached predict: {t.reached}  passed: {t.passed}  failed: {t.failed}  pass rate: {rate}",
        f"  of the failures, {summary.missing_kernel_failures} are missing kernels (UnsupportedOpError); "
        f"pass rate without them: {_percent(summary.pass_rate_with_kernels)}",
        f"did not reach predict: {t.early_failed} failed before predict, "
        f"{t.early_passed} passed without predicting; skipped: {t.skipped}; "
        f"errored (setup/teardown errors, crashes; counted in the failures): {t.errored}",
    ]
    for path, message in summary.collect_errors.items():
        lines.append(f"could not collect {path} (its tests are not counted): {collect_error_reason(message)}")
    return "\n".join(line for line in lines if line)
