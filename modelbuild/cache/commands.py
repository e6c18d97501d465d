"""`modelbuild cache status | push | pull | gc`, run in a project folder.

status  the configuration, whether the cache answers, its size, and which locally built stages it holds
push    upload every locally built stage that the cache does not hold (under the key it was built with)
pull    restore what the recipes need from the cache, building nothing (`doit run` with MODELBUILD_CACHE_ONLY=1)
gc      remove entries unused for N days or beyond a size budget, then the blobs no entry names
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from modelbuild import manifest, verify
from modelbuild.cache.config import CacheConfig, CacheConfigError, load_config
from modelbuild.cache.gc import collect
from modelbuild.cache.stage import CACHE_ONLY_VARIABLE, read_key, upload
from modelbuild.cache.store import CacheUnavailable, Store
from modelbuild.stage_records import stat_cache_file

BAD_INPUT = 2


class CacheCommandError(RuntimeError):
    """A cache command cannot run (one line)."""


@dataclass
class LocalStage:
    """A stage recorded in artifacts/<recipe>/.records, with what the cache can do with it."""

    recipe: str
    key: str
    record: dict
    outputs: list[Path]
    cache_key: str | None
    problem: str | None  # why it cannot be pushed, if it cannot


def local_stages(root: Path) -> Iterator[LocalStage]:
    """Every stage with a record under root/artifacts, in recipe and stage order."""
    for records in sorted((root / "artifacts").glob(f"*/{manifest.RECORDS}")):
        artifact_dir = records.parent
        for path in sorted(records.glob("*.json")):
            record = manifest.read_record(artifact_dir, path.stem)
            if record is None:
                continue
            outputs = [artifact_dir / record.get("file", "")] + [artifact_dir / name for name in record.get("outputs", {})]
            cache_key = read_key(artifact_dir, path.stem)
            problem = None
            if record.get("outcome") != "built":
                problem = "its last build failed" if record.get("outcome") == "failed" else "its output changed"
            elif cache_key is None:
                problem = "no cache key (built before modelbuild kept cache keys): `doit forget` it and build it again"
            else:
                cache = verify.StatCache(stat_cache_file(artifact_dir, path.stem))
                recorded = {record.get("file"): record, **record.get("outputs", {})}
                problem = next((reason for out in outputs if (reason := verify.changed(out, recorded[out.name], cache))),
                               None)
            yield LocalStage(artifact_dir.name, path.stem, record, outputs, cache_key, problem)


def _open(root: Path, writing: bool = False) -> tuple[CacheConfig, Store]:
    try:
        config = load_config(root)
    except CacheConfigError as err:
        raise CacheCommandError(str(err)) from None
    if not config.enabled:
        raise CacheCommandError("no cache is configured: add [tool.modelbuild.cache] url = \"...\" to pyproject.toml "
                                "(or [cache] to modelbuild.toml), or set MODELBUILD_CACHE_URL")
    if writing and config.read_only:
        raise CacheCommandError(f"the cache at {config.url} is read-only ({config.source}"
                                f"{', or MODELBUILD_CACHE_READ_ONLY' if os.environ.get('MODELBUILD_CACHE_READ_ONLY') else ''}); "
                                "this command writes to it")
    try:
        return config, Store(config)
    except CacheUnavailable as err:
        raise CacheCommandError(str(err)) from None


def status(root: Path, write: Callable[[str], None] = print) -> int:
    """Print the configuration, reachability, size and the local stages' presence; 1 if unreachable."""
    try:
        config = load_config(root)
    except CacheConfigError as err:
        raise CacheCommandError(str(err)) from None
    if not config.enabled:
        write(f"cache: none ({config.source})")
        return 0
    write(f"cache: {config.url}  ({config.source})")
    write(f"mode: {'read-only' if config.read_only else 'read-write'}")
    _, store = _open(root)
    try:
        entries = store.find("entries")
        blobs = store.find("blobs")
    except Exception as err:
        write(f"reachable: no ({type(err).__name__}: {err})")
        return 1
    write("reachable: yes")
    blob_bytes = sum(info.get("size") or 0 for info in blobs.values())
    write(f"entries: {sum(p.endswith('.json') for p in entries)}; blobs: {len(blobs)}, {human_size(blob_bytes)}")
    stages = list(local_stages(root))
    if stages:
        write("local stages:")
    for stage in stages:
        if stage.cache_key is not None and store.entry_path(stage.cache_key) in entries:
            state = "in the cache"
        elif stage.problem:
            state = f"not in the cache: {stage.problem}"
        else:
            state = "not in the cache (`modelbuild cache push` uploads it)"
        write(f"  {stage.recipe:<16} {stage.key:<24} {state}")
    return 0


def push(root: Path, write: Callable[[str], None] = print) -> int:
    """Upload every locally built stage the cache does not hold; 0 (nothing to push is not an error)."""
    _, store = _open(root, writing=True)
    counts = {"uploaded": 0, "already in the cache": 0, "skipped": 0}
    for stage in local_stages(root):
        if stage.problem is not None:
            outcome = f"skipped: {stage.problem}"
            counts["skipped"] += 1
        elif upload(store, stage.cache_key, stage.recipe, stage.key, stage.record, stage.outputs):
            outcome = "uploaded"
            counts["uploaded"] += 1
        else:
            outcome = "already in the cache"
            counts["already in the cache"] += 1
        write(f"  {stage.recipe:<16} {stage.key:<24} {outcome}")
    write("push: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def pull(root: Path, targets: list[str], write: Callable[[str], None] = print) -> int:
    """Restore what `doit run TARGETS` would build from the cache, building nothing; doit's exit code."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from modelbuild import tasks  # doit and the recipe schema: only pull needs them

    _open(root)
    previous = os.environ.get(CACHE_ONLY_VARIABLE)
    os.environ[CACHE_ONLY_VARIABLE] = "1"
    try:
        code = DoitMain(ModuleTaskLoader(tasks)).run(["run", "--continue", *(targets or ["build"])])
    finally:
        if previous is None:
            del os.environ[CACHE_ONLY_VARIABLE]
        else:
            os.environ[CACHE_ONLY_VARIABLE] = previous
    write("pull: every stage is in place" if code == 0 else
          "pull: some stages are not in the cache (above); `modelbuild build` builds them")
    return code


def gc(root: Path, max_age_days: float | None, max_size: int | None, dry_run: bool,
       write: Callable[[str], None] = print) -> int:
    """Collect the cache's garbage by the configured or given limits; print what went."""
    config, store = _open(root, writing=not dry_run)
    max_age_days = max_age_days if max_age_days is not None else config.max_age_days
    max_size = max_size if max_size is not None else config.max_size
    limits = [f"unused for {max_age_days:g} days" if max_age_days is not None else "",
              f"beyond {human_size(max_size)}" if max_size is not None else ""]
    write(f"gc: entries {' or '.join(l for l in limits if l) or 'that are unreadable'}; blobs no entry names"
          + (" (dry run: nothing is removed)" if dry_run else ""))
    result = collect(store, max_age_days, max_size, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    write(f"gc: {verb} {len(result.removed_entries)} entries and {len(result.removed_blobs)} blobs "
          f"({human_size(result.removed_bytes)}); kept {result.kept_entries} entries ({human_size(result.kept_bytes)})")
    return 0


def human_size(size: int) -> str:
    """1234567 -> '1.2 MB' (powers of 1000)."""
    value, units = float(size), ["B", "kB", "MB", "GB", "TB"]
    while value >= 1000 and len(units) > 1:
        value, units = value / 1000, units[1:]
    unit = units[0]
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
