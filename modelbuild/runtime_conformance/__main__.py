"""`python -m modelbuild.runtime_conformance`: run coremltools' tests against the reference runtime.

Examples:
  python -m modelbuild.runtime_conformance --suite mil --files 'iOS14/test_conv.py'
  python -m modelbuild.runtime_conformance --suite mil --sample 300 --seed 0
  python -m modelbuild.runtime_conformance --suite torch --classes 'TestConv*' --sample 200
  python -m modelbuild.runtime_conformance --floor            # the CI sample, checked against floor.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from modelbuild.runtime_conformance import floor as floor_module
from modelbuild.runtime_conformance.markdown import format_markdown
from modelbuild.runtime_conformance.report import format_summary, summary_json
from modelbuild.runtime_conformance.results import Summary
from modelbuild.runtime_conformance.runner import (
    ConformanceRunError,
    Selection,
    run_conformance,
    summary_from_dir,
)
from modelbuild.runtime_conformance.suites import SUITES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modelbuild.runtime_conformance",
        description="Run coremltools' own op tests with MLModel.predict routed to modelbuild.runtime "
                    "and report pass rates among the tests that reached predict.",
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="mil",
                        help="mil: MIL op tests iOS14-iOS18; torch: test_torch_ops.py (default: mil).")
    parser.add_argument("--files", action="append", default=[], metavar="GLOB",
                        help="Test files, relative to the suite root (e.g. 'iOS1[4-7]/test_*.py'); repeatable.")
    parser.add_argument("--classes", action="append", default=[], metavar="GLOB",
                        help="Test classes (op classes) to keep, e.g. 'TestConv*'; repeatable.")
    parser.add_argument("--exclude-classes", action="append", default=[], metavar="GLOB",
                        help="Test classes to leave out, e.g. 'TestLSTM'; repeatable.")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="Run N tests drawn deterministically from the collection.")
    parser.add_argument("--per-class", type=int, default=None, metavar="K",
                        help="Keep at most K tests of each test class in each file (drawn before --sample).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sample (default 0).")
    parser.add_argument("--fp32", action="store_true",
                        help="Also run coremltools' fp32 ML Program variants (INCLUDE_MIL_FP32_UNIT_TESTS=1).")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="Stop the whole run after this many seconds (what did not run is reported).")
    parser.add_argument("--test-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="Fail a single test that runs longer than this (default 120).")
    parser.add_argument("--top", type=int, default=15, help="How many failure reasons to list (default 15).")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="Also write the figures as JSON.")
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                        help="Also write the figures as Markdown tables (for docs/conformance.md).")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="Keep the pytest logs, JUnit XML and per-test JSON lines in DIR.")
    parser.add_argument("--report-only", type=Path, default=None, metavar="DIR",
                        help="Print the report of a run kept with --keep DIR (give --suite too), run nothing.")
    parser.add_argument("--floor", action="store_true",
                        help="Run the CI sample defined in floor.json and compare with its floor.")
    parser.add_argument("--record-floor", action="store_true",
                        help="With --floor: write the measured pass rate minus the margin as the new floor.")
    parser.add_argument("--margin", type=float, default=0.02,
                        help="With --record-floor: points below the measurement (default 0.02 = 2 points).")
    return parser


def _write_reports(summary: Summary, suite: str, args: argparse.Namespace) -> None:
    print(format_summary(summary, suite, top=args.top))
    if args.json is not None:
        args.json.write_text(json.dumps(summary_json(summary, suite), indent=2), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(format_markdown(summary, suite, top=args.top), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.report_only is not None:
        try:
            summary = summary_from_dir(args.report_only)
        except ConformanceRunError as error:
            print(f"error: {error}")
            return 2
        _write_reports(summary, args.suite, args)
        return 0
    if args.floor:
        floor = floor_module.load_floor()
        selection = floor.selection
    else:
        floor = None
        selection = Selection(suite=args.suite, files=tuple(args.files), classes=tuple(args.classes),
                              exclude_classes=tuple(args.exclude_classes),
                              sample=args.sample, per_class=args.per_class, seed=args.seed, fp32=args.fp32)
    try:
        summary = run_conformance(selection, timeout=args.timeout, test_timeout=args.test_timeout,
                                  keep_dir=args.keep)
    except (ConformanceRunError, ValueError) as error:
        print(f"error: {error}")
        return 2
    _write_reports(summary, selection.suite, args)
    if floor is None:
        return 0
    if args.record_floor:
        path = floor_module.record_floor(summary, floor.selection, margin=args.margin)
        print(f"recorded the floor in {path}")
        return 0
    verdict = floor_module.check_floor(summary, floor)
    print(verdict.message)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
