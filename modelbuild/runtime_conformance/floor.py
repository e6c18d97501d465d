"""The recorded conformance floor: a fixed sample of the MIL op tests and the pass rate it must keep.

`floor.json` beside this module holds the sample definition (suite, files,
size, seed), the floor (a pass rate among tests that reached predict) and the
measurement it was derived from. CI runs the sample (tests/runtime_conformance/
test_conformance.py) and fails when the pass rate drops below the floor;
`python -m modelbuild.runtime_conformance --floor --record-floor` re-measures
and writes the measured rate minus a margin.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from modelbuild.runtime_conformance.results import Summary
from modelbuild.runtime_conformance.runner import Selection

FLOOR_PATH = Path(__file__).with_name("floor.json")


@dataclass(frozen=True)
class Floor:
    """The CI sample and the lowest pass rate it may show."""

    selection: Selection
    pass_rate: float
    measured: dict


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def load_floor(path: Path = FLOOR_PATH) -> Floor:
    """Read `floor.json`; a ValueError names what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sample = data["sample"]
        selection = Selection(suite=sample["suite"], files=tuple(sample["files"]),
                              classes=tuple(sample.get("classes", ())),
                              exclude_classes=tuple(sample.get("exclude_classes", ())),
                              sample=None if sample.get("size") is None else int(sample["size"]),
                              per_class=None if sample.get("per_class") is None else int(sample["per_class"]),
                              seed=int(sample["seed"]),
                              fp32=bool(sample.get("fp32", False)))
        return Floor(selection=selection, pass_rate=float(data["pass_rate_floor"]),
                     measured=dict(data.get("measured", {})))
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path} is not a valid conformance floor ({type(error).__name__}: {error}); it needs "
            '{"sample": {"suite", "files", "per_class", "size", "seed"}, "pass_rate_floor": <0..1>}.'
        ) from error


def check_floor(summary: Summary, floor: Floor) -> Verdict:
    """Is the pass rate among tests that reached predict at least the floor?"""
    overall = summary.overall
    if overall.pass_rate is None:
        return Verdict(False, f"No test of the floor sample reached predict ({overall.total} ran, "
                              f"{overall.early_failed} failed before predict), so the runtime was not judged.")
    rate = overall.pass_rate
    figures = (f"{overall.passed}/{overall.reached} tests that reached predict passed "
               f"({100 * rate:.1f}%), floor {100 * floor.pass_rate:.1f}%")
    if rate + 1e-12 < floor.pass_rate:
        return Verdict(False, f"Conformance dropped below the floor: {figures}.")
    return Verdict(True, f"Conformance at or above the floor: {figures}.")


def record_floor(summary: Summary, selection: Selection, margin: float = 0.02,
                 path: Path = FLOOR_PATH) -> Path:
    """Write `selection` and the measured pass rate minus `margin` (not below 0) to `path`."""
    overall = summary.overall
    if overall.pass_rate is None:
        raise ValueError("Cannot record a floor from a run in which no test reached predict.")
    data = {
        "sample": {"suite": selection.suite, "files": list(selection.files), "classes": list(selection.classes),
                   "exclude_classes": list(selection.exclude_classes),
                   "per_class": selection.per_class, "size": selection.sample, "seed": selection.seed,
                   "fp32": selection.fp32},
        "pass_rate_floor": round(max(0.0, overall.pass_rate - margin), 4),
        "margin": margin,
        "measured": {
            "pass_rate": round(overall.pass_rate, 4), "reached": overall.reached, "passed": overall.passed,
            "failed": overall.failed, "early_failed": overall.early_failed,
            "early_passed": overall.early_passed, "skipped": overall.skipped, "not_run": summary.not_run,
            "seconds": round(summary.seconds, 1), "commit": summary.commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
