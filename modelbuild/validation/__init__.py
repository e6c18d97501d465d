"""Validation: run PyTorch, ONNX Runtime and every Core ML variant on the same samples and compare.

`validate_recipe` returns a `Report`; `write_reports` writes report.json / .md / .html.
"""
from __future__ import annotations

from modelbuild.validation.report import Report
from modelbuild.validation.run import validate_recipe
from modelbuild.validation.writers import write_reports

__all__ = ["Report", "validate_recipe", "write_reports"]
