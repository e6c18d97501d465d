"""Conformance of the Core ML reference runtime, judged by coremltools' own test suites.

A tool beside the runtime, not part of it: it reaches the runtime only through its entry point
(`modelbuild.runtime`), and the runtime's source digest, which decides when a build re-validates,
does not read it. See README.md beside this file and docs/conformance.md.
"""
from __future__ import annotations
