"""Warnings modelbuild shows to users (library warnings stay hidden)."""
from __future__ import annotations


class BuildWarning(UserWarning):
    """Something the user should know about a build, printed as one line under its task."""
