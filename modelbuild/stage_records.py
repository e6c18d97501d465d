"""A stage's record against its outputs: record a built stage, and say which outputs no longer match.

Every stage's record (`modelbuild.manifest`) names the files it wrote with their digests;
`verify` checks a file against its entry, cheaply through a stat snapshot when one was kept.
The stage runner (`modelbuild.stage_run`), the shared cache and the validation and agreement
stages read records through here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild import atomic, manifest, verify


def record_built(item, key: str, outputs: list[Path], record: dict[str, Any]) -> dict[str, str]:
    """Record a stage whose outputs are in place (built, or restored from the cache): the digest file beside an
    .mlpackage, the record, the stat cache. The doit result: the outcome and the artifact's digest."""
    artifact = outputs[0]
    digest = record.get("sha256") or record["package_digest"]
    if artifact.suffix == ".mlpackage":
        atomic.write_text(artifact.with_name(artifact.name + ".sha256"), digest + "\n")
    manifest.write_record(item.artifact_dir, item.name, key, record)
    verify.StatCache(stat_cache_file(item.artifact_dir, key)).remember(outputs)
    return {"outcome": "built", "sha256": digest}


def not_intact(record: dict[str, Any] | None, outputs: list[Path], cache: verify.StatCache | None) -> str | None:
    """Why a stage's outputs are not what its record says (None when they are)."""
    if record is None:
        return "first build"
    if record.get("outcome") == "stale":
        return record.get("error", "its output changed")
    if record.get("outcome") != "built":
        return "the last attempt failed"
    recorded = {record.get("file"): record, **record.get("outputs", {})}
    for path in outputs:
        reason = verify.changed(path, recorded.get(path.name, {}), cache)
        if reason:
            return reason
    return None


def stat_cache_file(artifact_dir: Path, key: str) -> Path:
    """Where the stat snapshots of a stage's verified outputs are kept."""
    return manifest.record_path(artifact_dir, key).with_suffix(".stat")


def stat_cache(item, key: str) -> verify.StatCache:
    """The stat snapshots of stage `key`'s verified outputs."""
    return verify.StatCache(stat_cache_file(item.artifact_dir, key))


def tampered_artifacts(artifact_dir: Path, recipe: str, artifacts: dict[str, Path]) -> dict[str, str]:
    """key -> why, for the built artifacts whose content (hashed, whatever the stat says) no longer matches
    their record; each such record is marked stale, so that the next build rebuilds the artifact."""
    tampered = {}
    for key, artifact in artifacts.items():
        record = manifest.read_record(artifact_dir, key)
        if record is None or record.get("outcome") != "built":
            continue
        reason = not_intact(record, [artifact], cache=None)
        if reason:
            manifest.write_record(artifact_dir, recipe, key, {**record, "outcome": "stale", "error": reason})
            tampered[key] = reason
    return tampered


def failed_stages(artifact_dir: Path, keys: list[str]) -> dict[str, str]:
    """key -> one-line error, for the stages among `keys` whose last run failed (or whose output went stale)."""
    failed = {}
    for key in keys:
        record = manifest.read_record(artifact_dir, key)
        if record is not None and record.get("outcome") in ("failed", "stale"):
            failed[key] = record.get("error", "failed")
    return failed
