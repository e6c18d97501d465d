"""doit's file-dependency check without hashing an unchanged file again and again.

doit's MD5 checker trusts a dependency whose modification time is the one it recorded, and
hashes it otherwise. A task that is up to date never records anything, so after a checkout,
a copy or a `touch`, every no-op build hashes every such dependency again, once per task that
reads it (a weights file read by the export, each torch-frontend variant and validation).
`HashCachingChecker` decides exactly as doit's does, but keeps each digest it computes under
the file's path, size, modification and change times and inode: in memory for the run, and in
`.doit.db.hashes` (beside doit's state) for the next runs. Any write to the file moves its
change time, so a digest is never reused for other content.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from doit.dependency import MD5Checker, get_file_md5

from modelbuild import atomic

HASHES_FILE = ".doit.db.hashes"


class HashCachingChecker(MD5Checker):
    """doit's MD5Checker (mtime, then size, then md5), with the md5 of an unchanged file computed once."""

    def __init__(self) -> None:
        self.file = Path(HASHES_FILE).resolve()
        self.digests: dict[str, str] | None = None

    def check_modified(self, file_path, file_stat, state):
        timestamp, size, file_md5 = state
        if file_stat.st_mtime == timestamp:
            return False
        if file_stat.st_size != size:
            return True
        return file_md5 != self.md5(file_path, file_stat)

    def get_state(self, dep, current_state):
        info = os.stat(dep)
        if current_state and current_state[0] == info.st_mtime:
            return None
        return info.st_mtime, info.st_size, self.md5(dep, info)

    def md5(self, path, info: os.stat_result) -> str:
        """The md5 of the file at `path` whose stat is `info`, from the cache when that stat was hashed before."""
        if self.digests is None:
            self.digests = _read(self.file)
        key = json.dumps([os.path.abspath(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino])
        if key not in self.digests:
            self.digests[key] = get_file_md5(path)
            _write(self.file, self.digests)
        return self.digests[key]


# The same decisions on the same recorded state as doit's MD5Checker: doit records the checker's class name
# with each task and treats another name as a changed dependency, which would rebuild every existing build.
HashCachingChecker.__name__ = HashCachingChecker.__qualname__ = "MD5Checker"


def _read(file: Path) -> dict[str, str]:
    try:
        digests = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return digests if isinstance(digests, dict) else {}


def _write(file: Path, digests: dict[str, str]) -> None:
    """Keep the digests of the files that still exist with that stat (the cache does not grow without bound)."""
    current = {}
    for key, digest in digests.items():
        path, size, mtime, ctime, inode = json.loads(key)
        try:
            info = os.stat(path)
        except OSError:
            continue
        if [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino] == [size, mtime, ctime, inode]:
            current[key] = digest
    try:
        atomic.write_text(file, json.dumps(current, indent=0, sort_keys=True) + "\n")
    except OSError:
        pass  # a cache that cannot be written costs time, not correctness
