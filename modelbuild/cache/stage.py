"""One build stage and the shared cache: restored before it runs, uploaded after it built.

`run_stage` makes a SharedStage before running a stage, which computes the stage's key. On a hit,
`restore` downloads every output into a temporary path beside it, checks each file against its
sha256 (a package file by file, then its package digest), moves them into place and writes the
record (with `restored_from`, the cache's URL, which timings.json shows) and stat cache as a
build would; the line says "restored from the cache". After a successful build, `built` uploads
it (unless the cache is read-only). Either way the key is kept beside the record
(`.records/<stage>.cache-key`), which is what `modelbuild cache push` uploads under. The cache
never fails a build: an unreachable store or a damaged entry costs one line and the stage is
built. With MODELBUILD_CACHE_ONLY=1 (`modelbuild cache pull`) a miss fails the stage instead of
building it.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelbuild import atomic, manifest, verify
from modelbuild.hashing import artifact_sha256
from modelbuild.stage_records import record_built
from modelbuild.verify import sha256_file

if TYPE_CHECKING:
    from modelbuild.file_deps import StageInputs

CACHE_ONLY_VARIABLE = "MODELBUILD_CACHE_ONLY"
KEY_SUFFIX = ".cache-key"
_STORES: dict[str, Any] = {}
_UNUSABLE: dict[str, str] = {}  # url or config problem -> the reason, shown once per process


class DamagedEntry(RuntimeError):
    """An entry whose files are missing or are not what it says."""

    def __init__(self, message: str, blob: str | None = None) -> None:
        super().__init__(message)
        self.blob = blob


def cache_only() -> bool:
    return os.environ.get(CACHE_ONLY_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def key_file(artifact_dir: Path, key: str) -> Path:
    """Where the cache key of stage `key`'s last build or restore is kept."""
    return manifest.record_path(artifact_dir, key).with_suffix(KEY_SUFFIX)


def read_key(artifact_dir: Path, key: str) -> str | None:
    """The cache key the stage's current record was built or restored under (None if unknown or stale)."""
    try:
        kept = json.loads(key_file(artifact_dir, key).read_text(encoding="utf-8"))
        record_sha256 = sha256_file(manifest.record_path(artifact_dir, key))
    except (OSError, ValueError):
        return None
    return kept.get("key") if isinstance(kept, dict) and kept.get("record_sha256") == record_sha256 else None


class SharedStage:
    """A stage about to run, seen by the cache: its key, and the store if the project has one."""

    def __init__(self, item, key: str, outputs: list[Path], stage_fingerprint: dict[str, Any],
                 inputs: StageInputs) -> None:
        self.item, self.key, self.outputs, self.fingerprint = item, key, list(outputs), stage_fingerprint
        self.store, self.problem = open_store(item.root)
        self.cache_key = None
        try:
            from modelbuild.cache.keys import stage_key  # when a stage runs: task creation imports this module

            self.cache_key = stage_key(item, key, stage_fingerprint, inputs)
        except Exception as err:  # a key that cannot be computed costs the cache, never the build
            if self.store is not None:
                print(f"    cache: the key of {key} cannot be computed ({type(err).__name__}: {err})")
            self.store = None

    def restore(self):
        """The doit result of a restored stage; None to build it; a TaskFailed when it must not be built."""
        from doit.exceptions import TaskFailed  # doit: `modelbuild cache status|push|gc` run without it

        started = time.perf_counter()
        try:
            reason = self._restore()
        except DamagedEntry as err:
            print(f"    cache: {err}; building it instead")
            self._drop_damaged(err.blob)
            reason = "its cache entry is damaged"
        except Exception as err:  # a network or permission problem
            reason = _unusable(self.store.url, f"{type(err).__name__}: {err}")
            self.store = None
        if reason is None:
            seconds = time.perf_counter() - started
            result = record_built(self.item, self.key, self.outputs,
                                  {**self._record, "seconds": round(seconds, 3), "restored_from": self.store.url})
            self._keep_key()
            self._mark_used()
            print(f"    {self.outputs[0].relative_to(self.item.root)}  (restored from the cache in {seconds:.1f} s)")
            return result
        if cache_only():
            return TaskFailed(f"{self.item.path.relative_to(self.item.root)}: {self.key}: {reason}; not built "
                              f"because {CACHE_ONLY_VARIABLE} is set")
        return None

    def built(self) -> None:
        """After a successful build: keep its key, and upload it unless the cache is read-only."""
        self._keep_key()
        if self.store is None or self.store.read_only or self.cache_key is None:
            return
        try:
            upload(self.store, self.cache_key, self.item.name, self.key,
                   manifest.read_record(self.item.artifact_dir, self.key), self.outputs)
        except Exception as err:
            _unusable(self.store.url, f"{type(err).__name__}: {err}")
            self.store = None

    def _restore(self) -> str | None:
        """Put the entry's outputs in place; None when done, else why not (a miss)."""
        if self.store is None:
            return self.problem or "no cache is configured"
        if self.cache_key is None:
            return "a stage it reads is not built"
        entry = self.store.read_entry(self.cache_key)
        if entry is None:
            return f"not in the cache at {self.store.url}"
        listed = {output["name"]: output for output in entry["outputs"]}
        if sorted(listed) != sorted(path.name for path in self.outputs):
            return "its cache entry names other files"
        self._record = {**entry["record"], "fingerprint": self.fingerprint}
        with contextlib.ExitStack() as replacements:
            downloads = []
            for path in self.outputs:
                output = listed[path.name]
                _check_record_agrees(self._record, path, output, self.outputs[0])
                if _already_in_place(path, output):
                    continue
                temporary = replacements.enter_context(atomic.atomic_path(path))
                downloads.append((temporary, output))
            fetch(self.store, downloads)  # raises DamagedEntry; the temporaries are then removed, nothing replaced
        return None

    def _drop_damaged(self, blob: str | None) -> None:
        """Remove a damaged entry (and the blob that failed) so that this build's upload replaces it."""
        if self.store is None or self.store.read_only:
            return
        with contextlib.suppress(Exception):
            self.store.delete([self.store.entry_path(self.cache_key)] + ([self.store.blob_path(blob)] if blob else []))

    def _keep_key(self) -> None:
        if self.cache_key is None:
            return
        record = manifest.record_path(self.item.artifact_dir, self.key)
        atomic.write_text(key_file(self.item.artifact_dir, self.key),
                          json.dumps({"key": self.cache_key, "record_sha256": sha256_file(record)}) + "\n")

    def _mark_used(self) -> None:
        if not self.store.read_only:
            with contextlib.suppress(Exception):
                self.store.mark_used(self.cache_key)


def open_store(root: Path):
    """(Store, None) for the project's cache, or (None, why there is none)."""
    # as stage_key: the configuration (tomllib) and the store are read when a stage runs, never by a no-op build
    from modelbuild.cache.config import CacheConfigError, load_config
    from modelbuild.cache.store import CacheUnavailable, Store

    try:
        config = load_config(root)
    except CacheConfigError as err:
        return None, _unusable(str(err), str(err))
    if not config.enabled:
        return None, None
    if config.url in _UNUSABLE:
        return None, _UNUSABLE[config.url]
    identity = json.dumps([config.url, config.read_only, config.storage_options], sort_keys=True, default=str)
    if identity not in _STORES:
        try:
            _STORES[identity] = Store(config)
        except CacheUnavailable as err:
            return None, _unusable(config.url, str(err))
    return _STORES[identity], None


def _unusable(what: str, reason: str) -> str:
    """Note (once per process, on its own line) that the cache cannot be used; the reason."""
    if what not in _UNUSABLE:
        _UNUSABLE[what] = f"the cache cannot be used ({reason})"
        print(f"    cache: {reason}; building without the cache")
    return _UNUSABLE[what]


def upload(store, cache_key: str, recipe: str, stage: str, record: dict[str, Any] | None, outputs: list[Path]) -> bool:
    """Upload a built stage under `cache_key` (blobs first, the entry last); False if it was there already."""
    from modelbuild.cache.store import blobs_of, make_entry  # as in open_store

    if record is None or record.get("outcome") != "built" or store.read_entry(cache_key) is not None:
        return False
    entry = make_entry(cache_key, recipe, stage, record, outputs)
    folder = outputs[0].parent
    store.upload_blobs({sha: folder / relative for relative, sha, _ in blobs_of(entry["outputs"])})
    store.write_entry(cache_key, entry)
    return True


def fetch(store, downloads: list[tuple[Path, dict[str, Any]]]) -> None:
    """Download outputs into their temporary paths and check every file; DamagedEntry if one is not right."""
    pairs = []
    for temporary, output in downloads:
        if "files" in output:
            temporary.mkdir(parents=True)
            pairs += [(f["sha256"], temporary / rel) for rel, f in sorted(output["files"].items())]
        else:
            pairs.append((output["sha256"], temporary))
    if not pairs:
        return
    try:
        store.download_blobs(pairs)
    except FileNotFoundError as err:
        raise DamagedEntry(f"an object of the entry is missing ({err})") from None
    for sha, path in pairs:
        if not path.is_file() or sha256_file(path) != sha:
            raise DamagedEntry(f"the object {sha[:12]}... ({path.name}) does not match its sha256", blob=sha)
    for temporary, output in downloads:
        if "files" in output and artifact_sha256(temporary) != output["package_digest"]:
            raise DamagedEntry(f"{output['name']} does not match its package digest")


def _check_record_agrees(record: dict[str, Any], path: Path, output: dict[str, Any], artifact: Path) -> None:
    """The record must describe the same bytes as the entry's file list (else the entry is damaged)."""
    recorded = record if path == artifact else record.get("outputs", {}).get(path.name, {})
    digest = output.get("package_digest") or output.get("sha256")
    if (recorded.get("package_digest") or recorded.get("sha256")) != digest:
        raise DamagedEntry(f"the entry's record does not describe {path.name} as its file list does")


def _already_in_place(path: Path, output: dict[str, Any]) -> bool:
    """The local output already has the entry's content (after `cache pull`, say): nothing to download."""
    recorded = ({"package_digest": output["package_digest"]} if "files" in output else {"sha256": output["sha256"]})
    return verify.changed(path, recorded) is None
