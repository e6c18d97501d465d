"""Running one build stage as a doit action: the why line, the record, the outcome.

A stage that makes an artifact (the ONNX export, a Core ML variant) never fails its doit task:
it records its outcome ("built" with the artifact's sha256, or "failed" with one line) and
returns it as the task's result, so that validation still runs and reports every other
artifact. The public task (`onnx:<r>`, `coreml:<r>.<v>`) then fails through `verdict`.
Validation and the agreement matrix, which nothing else waits for, fail as usual.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from doit.exceptions import TaskFailed

from modelbuild import atomic, fingerprint, manifest
from modelbuild.diagnostics import BuildWarning

_SHOWN_WARNINGS: set[str] = set()


def run_stage(item, key: str, artifact: Path, stage: Callable, args: tuple, stage_fingerprint: dict[str, Any],
              requires: tuple[str, ...] = (), terminal: bool = False) -> dict[str, str] | TaskFailed:
    """doit action: run one stage, record it, print one summary line; return the outcome.

    `requires`: stages whose last outcome must be "built" first (an ONNX-fed variant needs the export).
    `terminal`: fail the doit task on failure (validation, agreement) instead of only recording it.
    A failure is one line naming the recipe file and the stage (MODELBUILD_TRACEBACK=1 raises instead).
    """
    print(f"    why: {why_rerun(item, key, artifact, stage_fingerprint)}")
    started = time.perf_counter()
    base = {"recipe_file": str(item.path.relative_to(item.root)), "fingerprint": stage_fingerprint}
    try:
        _check_upstream(item, requires)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BuildWarning)
            entry = stage(*args)
        _show(caught)
    except Exception as err:  # stages run user models and third-party converters: report, don't crash
        if os.environ.get("MODELBUILD_TRACEBACK"):
            raise
        error = f"{type(err).__name__}: {err}" if not isinstance(err, UpstreamFailed) else str(err)
        manifest.write_record(item.artifact_dir, item.name, key, {
            **base, "outcome": "failed", "error": error, "seconds": round(time.perf_counter() - started, 3)})
        line = f"{item.path.relative_to(item.root)}: {key}: {error}"
        if terminal:
            return TaskFailed(line)
        print(f"    FAILED: {line}")
        return {"outcome": "failed", "error": error}
    from modelbuild.hashing import artifact_sha256

    digest = artifact_sha256(artifact)
    if artifact.suffix == ".mlpackage":
        atomic.write_text(artifact.with_name(artifact.name + ".sha256"), digest + "\n")
    manifest.write_record(item.artifact_dir, item.name, key, {
        **base, **entry, "outcome": "built", "file": artifact.name, "sha256": digest})
    print(f"    {artifact.relative_to(item.root)}  ({time.perf_counter() - started:.1f} s)")
    return {"outcome": "built", "sha256": digest}


class UpstreamFailed(RuntimeError):
    """A stage this one needs failed at its last run."""


def _check_upstream(item, requires: tuple[str, ...]) -> None:
    for key in requires:
        record = manifest.read_record(item.artifact_dir, key) or {}
        if record.get("outcome") != "built":
            raise UpstreamFailed(f"not built because {key} failed: {record.get('error', 'it has not run')}")


def _show(caught: list) -> None:
    for warning in caught:
        if issubclass(warning.category, BuildWarning) and str(warning.message) not in _SHOWN_WARNINGS:
            _SHOWN_WARNINGS.add(str(warning.message))  # once per doit run, not once per stage
            print(f"    warning: {warning.message}")


def verdict(item, key: str) -> TaskFailed | None:
    """doit action of the public task: fail with the stage's one-line error if its last run failed."""
    record = manifest.read_record(item.artifact_dir, key) or {}
    if record.get("outcome") == "built":
        return None
    return TaskFailed(f"{item.path.relative_to(item.root)}: {key}: {record.get('error', 'the stage has not run')}")


def last_run_built(item, key: str) -> Callable[[], bool]:
    """doit uptodate check: False after a failed run, so a failed stage is tried again by the next build."""
    return lambda: (manifest.read_record(item.artifact_dir, key) or {}).get("outcome") == "built"


def failed_stages(artifact_dir: Path, keys: list[str]) -> dict[str, str]:
    """key -> one-line error, for the stages among `keys` whose last run failed."""
    failed = {}
    for key in keys:
        record = manifest.read_record(artifact_dir, key)
        if record is not None and record.get("outcome") == "failed":
            failed[key] = record.get("error", "failed")
    return failed


def why_rerun(item, key: str, artifact: Path, stage_fingerprint: dict[str, Any]) -> str:
    """Why a stage runs: first build, missing artifact, the recipe fields or tools that changed, or its files."""
    previous = manifest.read_record(item.artifact_dir, key)
    if previous is None:
        return "first build"
    changed = fingerprint.changed_fields(previous.get("fingerprint", {}), stage_fingerprint)
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return ", ".join(changed[:3]) + more + " changed"
    if previous.get("outcome") == "failed":
        return "the last attempt failed"
    if not artifact.exists():
        return f"{artifact.name} is missing"
    return "an input file changed (weights, model source, upstream artifact or samples)"
