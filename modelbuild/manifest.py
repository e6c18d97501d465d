"""What was built, from what, with which tools: per-stage records and the manifest made of them.

Each stage writes one record, `artifacts/<recipe>/.records/<key>.json`: its outcome ("built" with
the artifact's file name and sha256, or "failed" with the one-line error), the stage fingerprint
and what the stage reported. `manifest.json` (the reproducible part: no times) and `timings.json`
(seconds, dates, and the cache a stage was restored from) are rebuilt from the records after every stage, under a lock, so a
corrupt or deleted manifest is whole again after the next stage, and parallel stages never lose
each other's entries.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from modelbuild import atomic
from modelbuild.file_lock import FileLock

MANIFEST_NAME = "manifest.json"
TIMINGS_NAME = "timings.json"
RECORDS = ".records"
TIMING_FIELDS = ("seconds", "built_at", "restored_from")  # what this machine did: never in manifest.json


def record_path(artifact_dir: Path, key: str) -> Path:
    """Where the record of stage `key` ('onnx', 'coreml.<variant>', 'validate', ...) lives."""
    return artifact_dir / RECORDS / f"{key}.json"


def read_record(artifact_dir: Path, key: str) -> dict[str, Any] | None:
    """The last record of stage `key` (None when there is none or it is unreadable)."""
    try:
        record = json.loads(record_path(artifact_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(artifact_dir: Path, recipe: str, key: str, record: dict[str, Any]) -> None:
    """Store the record of stage `key` (plus the UTC time) and rebuild manifest.json and timings.json."""
    record = {**record, "stage": key, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (artifact_dir / RECORDS).mkdir(parents=True, exist_ok=True)
    with FileLock(artifact_dir / RECORDS / ".lock"):
        atomic.write_text(record_path(artifact_dir, key), json.dumps(record, indent=2, sort_keys=True) + "\n")
        write_manifest(artifact_dir, recipe)


def write_manifest(artifact_dir: Path, recipe: str) -> None:
    """Rebuild manifest.json (records without times) and timings.json from the stage records."""
    records = _records(artifact_dir)
    timings = {key: {k: record[k] for k in TIMING_FIELDS if k in record} for key, record in records.items()}
    atomic.write_text(artifact_dir / MANIFEST_NAME, json.dumps(_manifest(recipe, records), indent=2, sort_keys=True)
                      + "\n")
    atomic.write_text(artifact_dir / TIMINGS_NAME, json.dumps(timings, indent=2, sort_keys=True) + "\n")


def repair_manifest(artifact_dir: Path, recipe: str) -> None:
    """doit action: rebuild manifest.json and timings.json from the records (under the records' lock)."""
    (artifact_dir / RECORDS).mkdir(parents=True, exist_ok=True)
    with FileLock(artifact_dir / RECORDS / ".lock"):
        write_manifest(artifact_dir, recipe)
    print(f"    {artifact_dir.name}/{MANIFEST_NAME} rebuilt from the stage records")


def _records(artifact_dir: Path) -> dict[str, dict[str, Any]]:
    records = {path.stem: read_record(artifact_dir, path.stem) for path in sorted((artifact_dir / RECORDS).glob("*.json"))}
    return {key: record for key, record in records.items() if record is not None}


def _manifest(recipe: str, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"recipe": recipe, "artifacts": {key: _reproducible(record) for key, record in records.items()}}


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """The manifest of a recipe's artifact folder ({} when there is none or it is unreadable)."""
    try:
        return json.loads((artifact_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _reproducible(value: Any) -> Any:
    """A record without times: what two builds of the same inputs agree on."""
    if isinstance(value, dict):
        return {k: _reproducible(v) for k, v in value.items() if k not in TIMING_FIELDS}
    return value


def manifest_is_current(artifact_dir: Path, recipe: str) -> Callable[[], bool]:
    """doit uptodate check: manifest.json and timings.json exist and say what the records say."""
    def current() -> bool:
        try:
            manifest = json.loads((artifact_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
            json.loads((artifact_dir / TIMINGS_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return manifest == _manifest(recipe, _records(artifact_dir))
    return current
