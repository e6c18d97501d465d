"""Validation stage: compare every artifact with PyTorch, write the reports, fail on any miss."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from modelbuild.recipe import Recipe
from modelbuild.stage_records import failed_stages, tampered_artifacts
from modelbuild.validation import validate_recipe, write_reports
from modelbuild.validation.writers import summary_lines


class ValidationFailed(RuntimeError):
    """At least one comparison missed its tolerance or could not be made; the message is the table."""


def validate(recipe: Recipe, root: Path, artifact_dir: Path) -> dict[str, Any]:
    """Run validation, write report.{json,md,html}, print one summary line per artifact."""
    started = time.perf_counter()
    keys = {"onnx": "onnx", **{f"coreml.{variant}": variant for variant in recipe.coreml}}
    files = {"onnx": recipe.onnx_file, **{f"coreml.{v}": recipe.coreml_file(v) for v in recipe.coreml}}
    tampered = tampered_artifacts(artifact_dir, recipe.name, {key: artifact_dir / file for key, file in files.items()})
    failed = {keys[key]: error for key, error in failed_stages(artifact_dir, list(keys)).items()}
    failed.update({keys[key]: f"{why}; the next build rebuilds it" for key, why in tampered.items()})
    report = validate_recipe(recipe, root, artifact_dir, progress=_progress, failed=failed)
    write_reports(report, artifact_dir)
    _progress("")
    for line in summary_lines(report):
        print(f"    {line}")
    if not report.passed:
        flat = f"{len(report.flat_outputs)} flat reference output(s), " if report.flat_outputs else ""
        raise ValidationFailed(f"{flat}{len(report.failures())} comparison(s) failed "
                               f"(see {artifact_dir / 'report.html'}):\n{report.failure_table()}")
    return {"passed": True, "comparisons": len(report.comparisons), "seconds": round(time.perf_counter() - started, 3)}


def _progress(line: str) -> None:
    """On a terminal, one self-overwriting status line ("" clears it); elsewhere nothing."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K    validating {line} ..." if line else "\r\033[K")
        sys.stderr.flush()
