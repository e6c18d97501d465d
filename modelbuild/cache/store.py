"""The cache's objects on an fsspec filesystem (a folder, NFS, S3, GCS, Azure, HTTP).

    <url>/blobs/<sha[:2]>/<sha256>          file contents, named by their sha256
    <url>/entries/<key[:2]>/<key>.json      a stage's outputs (file names, sha256, sizes) and its record
    <url>/used/<key>/<YYYY-MM-DD>           empty markers: the days an entry was restored (for gc)

An entry is the commit: it is written after every blob it names, in one PUT (or a rename on a
local filesystem), so a killed upload leaves only blobs that no entry names. An entry that is
absent, unreadable or incomplete is a miss; a blob whose content is not its name is found out
when it is downloaded (`stage` checks every file), and the entry is then a miss too.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from modelbuild.cache.config import CacheConfig
from modelbuild.cache.keys import FORMAT
from modelbuild.verify import describe


class CacheUnavailable(RuntimeError):
    """The cache cannot be reached or used (one line: the URL and the reason)."""


def _hex(value: Any, length: int = 64) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


class Store:
    """A cache on an fsspec filesystem: committed entries, blobs named by their sha256, use markers."""

    def __init__(self, config: CacheConfig) -> None:
        try:
            import fsspec
            from fsspec.implementations.local import LocalFileSystem
        except ImportError:
            raise CacheUnavailable(f"the cache at {config.url} needs fsspec: pip install 'modelbuild[cache]' "
                                   "(and s3fs, gcsfs or adlfs for S3, GCS or Azure)") from None
        try:
            self.fs, root = fsspec.core.url_to_fs(config.url, **config.storage_options)
        except (ImportError, ValueError, TypeError) as err:
            raise CacheUnavailable(f"the cache at {config.url} cannot be opened: {type(err).__name__}: {err}") from None
        self.url = config.url
        self.root = root.rstrip("/")
        self.read_only = config.read_only
        self.local = isinstance(self.fs, LocalFileSystem)

    # paths
    def entry_path(self, key: str) -> str:
        return f"{self.root}/entries/{key[:2]}/{key}.json"

    def blob_path(self, sha256: str) -> str:
        return f"{self.root}/blobs/{sha256[:2]}/{sha256}"

    def used_path(self, key: str, day: str) -> str:
        return f"{self.root}/used/{key}/{day}"

    # entries
    def read_entry(self, key: str) -> dict[str, Any] | None:
        """The committed entry of `key`; None when there is none, or it is unreadable or incomplete."""
        try:
            data = self.fs.cat_file(self.entry_path(key))
        except FileNotFoundError:
            return None
        except Exception as err:
            raise CacheUnavailable(f"the cache at {self.url} cannot be read: {type(err).__name__}: {err}") from None
        try:
            entry = json.loads(data)
        except ValueError:
            return None
        return entry if valid_entry(entry, key) else None

    def write_entry(self, key: str, entry: dict[str, Any]) -> None:
        """Commit an entry (every blob it names is uploaded already)."""
        self._write_atomically(self.entry_path(key), json.dumps(entry, indent=1, sort_keys=True).encode())

    def upload_blobs(self, files: dict[str, Path]) -> int:
        """Upload the files (sha256 -> local path) that the cache does not hold whole; the bytes sent."""
        missing = {sha: path for sha, path in files.items() if self._size(self.blob_path(sha)) != path.stat().st_size}
        for sha, path in missing.items():
            if self.local:
                self._write_atomically(self.blob_path(sha), source=path)
        if missing and not self.local:
            self.fs.put([str(p) for p in missing.values()], [self.blob_path(sha) for sha in missing])
        return sum(path.stat().st_size for path in missing.values())

    def download_blobs(self, pairs: list[tuple[str, Path]]) -> None:
        """Download blobs (sha256, local path) in one batch (fsspec transfers them concurrently)."""
        for _, path in pairs:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get([self.blob_path(sha) for sha, _ in pairs], [str(path) for _, path in pairs])

    def mark_used(self, key: str) -> None:
        """Note that `key` was used today (gc removes entries by their last use)."""
        self._write_atomically(self.used_path(key, time.strftime("%Y-%m-%d", time.gmtime())), b"")

    def delete(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            self.fs.rm(paths)

    def find(self, folder: str) -> dict[str, dict[str, Any]]:
        """Every object under `folder` ('entries', 'blobs', 'used') with its details, listed afresh."""
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(f"{self.root}/{folder}", detail=True)
        except FileNotFoundError:
            return {}
        return {path: info for path, info in found.items() if info.get("type", "file") == "file"}

    def _size(self, path: str) -> int | None:
        self.fs.invalidate_cache(path)  # never trust a listing made before another client wrote
        try:
            return self.fs.info(path).get("size")
        except FileNotFoundError:
            return None

    def _write_atomically(self, path: str, data: bytes | None = None, source: Path | None = None) -> None:
        """Write an object in one step: a PUT, or on a local filesystem a temporary file renamed into place."""
        if not self.local:
            if source is not None:
                self.fs.put_file(str(source), path)
            else:
                self.fs.pipe_file(path, data)
            return
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            if source is not None:
                self.fs.put_file(str(source), temporary)
            else:
                self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, path)
        finally:
            if self.fs.exists(temporary):
                self.fs.rm(temporary)


def describe_output(path: Path) -> dict[str, Any]:
    """An output as an entry lists it: its name, sha256 and size, or a package's digest and files."""
    described = describe(path)
    if "files" not in described:
        return {"name": path.name, "sha256": described["sha256"], "size": path.stat().st_size}
    return {"name": path.name, "package_digest": described["package_digest"],
            "files": {rel: {"sha256": sha, "size": (path / rel).stat().st_size} for rel, sha in described["files"].items()}}


def make_entry(key: str, recipe: str, stage: str, record: dict[str, Any], outputs: list[Path]) -> dict[str, Any]:
    """The entry of a built stage: its outputs and its record (without the local time stamp and provenance)."""
    listed = [describe_output(path) for path in outputs]
    return {"format": FORMAT, "key": key, "recipe": recipe, "stage": stage,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "record": {k: v for k, v in record.items() if k not in ("built_at", "stage", "restored_from")},
            "outputs": listed, "bytes": sum(size for _, _, size in blobs_of(listed))}


def blobs_of(outputs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(relative path, sha256, size) of every file of an entry's outputs."""
    files = []
    for output in outputs:
        if "files" in output:
            files += [(f"{output['name']}/{rel}", f["sha256"], f["size"]) for rel, f in sorted(output["files"].items())]
        else:
            files.append((output["name"], output["sha256"], output["size"]))
    return files


def valid_entry(entry: Any, key: str) -> bool:
    """An entry of this key and format, with a built record and a sha256 and size for every file."""
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
        return False
    record, outputs = entry.get("record"), entry.get("outputs")
    if not isinstance(record, dict) or record.get("outcome") != "built" or not isinstance(outputs, list) or not outputs:
        return False
    return all(_valid_output(output) for output in outputs)


def _valid_output(output: Any) -> bool:
    """A plain file name with its sha256 and size, or a package with its digest and files (paths inside it)."""
    if not isinstance(output, dict) or not isinstance(output.get("name"), str) or "/" in output["name"] \
            or output["name"] in ("", ".", ".."):
        return False
    if "files" not in output:
        return _hex(output.get("sha256")) and isinstance(output.get("size"), int)
    files = output["files"]
    if not isinstance(files, dict) or not files or not _hex(output.get("package_digest")):
        return False
    return all(isinstance(relative, str) and not relative.startswith("/") and ".." not in relative.split("/")
               and isinstance(f, dict) and _hex(f.get("sha256")) and isinstance(f.get("size"), int)
               for relative, f in files.items())
