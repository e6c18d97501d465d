"""Conformance of the Core ML reference runtime, judged by coremltools' own test suites.

See README.md beside this file and docs/conformance.md.
"""
from __future__ import annotations
