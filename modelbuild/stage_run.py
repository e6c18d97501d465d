"""Running one build stage as a doit action: the why line, the record, the outcome.

A stage that makes an artifact (the ONNX export, a Core ML variant) never fails its doit task:
it records its outcome ("built" with the artifact's sha256, or "failed" with one line) and
returns it as the task's result, so that validation still runs and reports every other
artifact. The public task (`onnx:<r>`, `coreml:<r>.<v>`) then fails through `verdict`.
Validation and the agreement matrix, which nothing else waits for, fail as usual.
"""
from __future__ import annotations

import importlib
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from doit.exceptions import TaskFailed
from doit.dependency import UptodateCalculator
from doit.task import result_dep
from doit.tools import config_changed

from modelbuild import fingerprint, manifest, verify
from modelbuild.cache.stage import SharedStage
from modelbuild.diagnostics import BuildWarning
from modelbuild.file_deps import StageInputs
from modelbuild.stage_records import not_intact, record_built, stat_cache

_SHOWN_WARNINGS: set[str] = set()


def run_stage(item, key: str, outputs: list[Path], stage: str, args: tuple, stage_fingerprint: dict[str, Any],
              inputs: StageInputs, requires: tuple[str, ...] = (),
              terminal: bool = False) -> dict[str, str] | TaskFailed:
    """doit action: run one stage, record it and what it wrote, print one summary line; return the outcome.

    `stage`: 'module:function', imported only when the stage runs (task creation stays light).
    `outputs`: the files the stage writes, the artifact first (its digest is the task's result).
    `inputs`: what the stage reads besides its fingerprint (files, upstream stages): its cache key hashes them.
    `requires`: stages whose last outcome must be "built" first (an ONNX-fed variant needs the export).
    `terminal`: fail the doit task on failure (validation, agreement) instead of only recording it.
    A failure is one line naming the recipe file and the stage (MODELBUILD_TRACEBACK=1 raises instead).
    """
    artifact = outputs[0]
    print(f"    why: {why_rerun(item, key, outputs, stage_fingerprint)}")
    started = time.perf_counter()
    shared = SharedStage(item, key, outputs, stage_fingerprint, inputs)  # the remote cache (modelbuild.cache), if any
    restored = shared.restore()
    if restored is not None:
        return restored
    base = {"recipe_file": str(item.path.relative_to(item.root)), "fingerprint": stage_fingerprint}
    try:
        _check_upstream(item, requires)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BuildWarning)
            entry = _function(stage)(*args)
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
    result = record_built(item, key, outputs, {
        **base, **entry, "outcome": "built", "file": artifact.name, **verify.describe(artifact),
        "seconds": round(time.perf_counter() - started, 3),
        "outputs": {path.name: verify.describe(path) for path in outputs[1:]}})
    print(f"    {artifact.relative_to(item.root)}  ({time.perf_counter() - started:.1f} s)")
    shared.built()
    return result


def _function(reference: str) -> Callable:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


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


class StageUptodate(UptodateCalculator):
    """A stage's whole doit uptodate check in one callable (doit inspects each callable's signature per task:
    one instead of two to four): its fingerprint is unchanged (doit's `config_changed`), the results of the
    upstream stages it reads are unchanged (`result_dep`, which also orders it after them), and the last run
    built what is still there, unchanged (a failed or tampered stage runs again). The values doit keeps are
    those of `config_changed` and `result_dep`, so build state from before carries over."""

    def __init__(self, item, key: str, outputs: list[Path], stage_fingerprint: dict[str, Any],
                 upstream: list[str]):
        self.item, self.key, self.outputs, self.upstream = item, key, outputs, list(upstream)
        self.config = config_changed(stage_fingerprint)
        self.results = [result_dep(name) for name in upstream]

    def configure_task(self, task) -> None:
        for part in (self.config, *self.results):
            part.configure_task(task)

    def setup(self, dep_manager, tasks_dict) -> None:
        for part in self.results:
            part.setup(dep_manager, tasks_dict)

    def __call__(self, task, values) -> bool:
        same = [part(task, values) for part in (self.config, *self.results)]  # each registers its value saver
        return all(same) and self.intact()

    def intact(self) -> bool:
        record = manifest.read_record(self.item.artifact_dir, self.key)
        return not_intact(record, self.outputs, stat_cache(self.item, self.key)) is None


def why_rerun(item, key: str, outputs: list[Path], stage_fingerprint: dict[str, Any]) -> str:
    """Why a stage runs: first build, the recipe fields or tools that changed, a failed or tampered
    output, or its input files."""
    previous = manifest.read_record(item.artifact_dir, key)
    if previous is None:
        return "first build"
    changed = fingerprint.changed_fields(previous.get("fingerprint", {}), stage_fingerprint)
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return ", ".join(changed[:3]) + more + " changed"
    return not_intact(previous, outputs, stat_cache(item, key)) or "an input file changed (weights, model source, upstream artifact or samples)"
