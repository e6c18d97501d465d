"""`modelbuild cache gc`: remove the entries nobody uses any more, then the blobs no entry names.

An entry's last use is the later of its upload and the newest `used/<key>/<day>` marker (a
writable restore leaves one per day). Entries unused for more than `max_age_days` go first;
then, while the blobs of the remaining entries exceed `max_size`, the least recently used
entries go. Unreadable entries go too. The blobs of removed entries that no remaining entry
names go with them; other blobs that no entry names, and leftover temporary files, go once they
are older than an hour (an upload in progress writes its blobs before its entry). Entries are
removed before their blobs, so a reader never finds an entry without its blobs because of gc
(and if it did, the entry would only be a miss).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from modelbuild.cache.store import Store, blobs_of, valid_entry

GRACE = dt.timedelta(hours=1)


@dataclass
class Collection:
    """What a gc run removes and keeps."""

    removed_entries: list[str] = field(default_factory=list)
    kept_entries: int = 0
    kept_bytes: int = 0
    removed_blobs: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    other_objects: list[str] = field(default_factory=list)  # markers of removed entries, leftover temporaries


def collect(store: Store, max_age_days: float | None, max_size: int | None, now: dt.datetime | None = None,
            dry_run: bool = False) -> Collection:
    """Remove (or with `dry_run` only list) what the policy above says; what was removed."""
    now = now or dt.datetime.now(dt.timezone.utc)
    result = Collection()
    entry_files = store.find("entries")
    entries: dict[str, dict[str, Any]] = {}
    contents = store.fs.cat([path for path in entry_files if path.endswith(".json")], on_error="return")
    for path, data in contents.items():
        key = path.rsplit("/", 1)[-1][: -len(".json")]
        try:
            entry = json.loads(data) if isinstance(data, bytes) else None
        except ValueError:
            entry = None
        if valid_entry(entry, key):
            entries[key] = entry
        else:
            result.removed_entries.append(key)
    result.other_objects += [path for path, info in entry_files.items()
                             if not path.endswith(".json") and _older(info, now, GRACE)]
    markers = store.find("used")
    last_used, newest = _last_used(entries, markers)
    ordered = sorted(entries, key=lambda k: last_used[k], reverse=True)
    kept_blobs: dict[str, int] = {}
    for key in ordered:
        blobs = {sha: size for _, sha, size in blobs_of(entries[key]["outputs"])}
        too_old = max_age_days is not None and now - last_used[key] > dt.timedelta(days=max_age_days)
        too_big = max_size is not None and sum({**kept_blobs, **blobs}.values()) > max_size
        if too_old or too_big:
            result.removed_entries.append(key)
        else:
            kept_blobs.update(blobs)
            result.kept_entries += 1
    result.kept_bytes = sum(kept_blobs.values())
    removed = set(result.removed_entries)
    result.other_objects += [path for path in markers if path.rsplit("/", 2)[-2] in removed or path not in newest]
    released = {sha for key in removed if key in entries for _, sha, _ in blobs_of(entries[key]["outputs"])}
    for path, info in store.find("blobs").items():
        name = path.rsplit("/", 1)[-1]
        if name in kept_blobs or not (name in released or _older(info, now, GRACE)):
            continue  # a young blob no entry names may belong to an upload in progress
        (result.other_objects if ".tmp-" in name else result.removed_blobs).append(path)
        result.removed_bytes += info.get("size") or 0
    if not dry_run:
        store.delete(store.entry_path(key) for key in result.removed_entries)
        store.delete(result.other_objects)
        store.delete(result.removed_blobs)
    return result


def _last_used(entries: dict[str, dict[str, Any]], markers: dict[str, Any]) -> tuple[dict[str, dt.datetime], set[str]]:
    """Each entry's last use, and the newest use marker of each entry (the older ones can go)."""
    last = {key: _parse(entry.get("created")) or dt.datetime.min.replace(tzinfo=dt.timezone.utc)
            for key, entry in entries.items()}
    newest: dict[str, tuple[str, str]] = {}
    for path in markers:
        key, day = path.rsplit("/", 2)[-2:]
        used = _parse(day)
        if key in last and used is not None:
            last[key] = max(last[key], used)
            newest[key] = max(newest.get(key, ("", "")), (day, path))
    return last, {path for _, path in newest.values()}


def _parse(text: Any) -> dt.datetime | None:
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, layout).replace(tzinfo=dt.timezone.utc)
        except (TypeError, ValueError):
            continue
    return None


def _older(info: dict[str, Any], now: dt.datetime, age: dt.timedelta) -> bool:
    """The object was last modified more than `age` ago (unknown times count as recent: kept)."""
    modified = modified_time(info)
    return modified is not None and now - modified > age


def modified_time(info: dict[str, Any]) -> dt.datetime | None:
    """An object's modification time from fsspec details (local mtime, S3 LastModified, GCS updated, Azure
    last_modified)."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "mtime_ns"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        if isinstance(value, (int, float)):
            seconds = value / 1e9 if name == "mtime_ns" else value
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return None
