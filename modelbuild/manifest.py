"""artifacts/<recipe>/manifest.json: what was built, from what, with which tools.

Each stage records one entry under its artifact's key: file name, content hash,
the stage fingerprint, tool versions, the feature signature and the time taken.
The file is rewritten atomically after each stage.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from modelbuild import atomic

MANIFEST_NAME = "manifest.json"


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """The manifest of a recipe's artifact folder ({} when there is none or it is unreadable)."""
    try:
        return json.loads((artifact_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record_artifact(artifact_dir: Path, recipe: str, key: str, entry: dict[str, Any]) -> None:
    """Store `entry` (plus a UTC timestamp) under artifacts[key] in the manifest of `recipe`."""
    manifest = read_manifest(artifact_dir)
    manifest["recipe"] = recipe
    manifest.setdefault("artifacts", {})[key] = {**entry, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic.write_text(artifact_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

