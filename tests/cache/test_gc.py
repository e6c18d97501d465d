"""`modelbuild cache gc`: entries go by last use and a size budget, blobs when no entry names them."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from modelbuild import cli
from modelbuild.cache.config import CacheConfig
from modelbuild.cache.gc import collect
from modelbuild.cache.stage import upload
from modelbuild.cache.store import Store

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def store(tmp_path):
    return Store(CacheConfig(url=str(tmp_path / "cache")))


def _entry(store: Store, tmp_path, key: str, contents: list[bytes], created: dt.datetime, used: list[dt.date] = ()):
    """Upload an entry of files with these contents, as made `created`, restored on the days `used`."""
    folder = tmp_path / f"outputs-{key[:4]}"
    folder.mkdir()
    outputs = []
    for number, content in enumerate(contents):
        (folder / f"out{number}.bin").write_bytes(content)
        outputs.append(folder / f"out{number}.bin")
    from modelbuild.cache.store import describe_output

    record = {"outcome": "built", "file": outputs[0].name, "sha256": describe_output(outputs[0])["sha256"]}
    assert upload(store, key, "r", "onnx", record, outputs)
    entry = json.loads(store.fs.cat_file(store.entry_path(key)))
    entry["created"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    store.write_entry(key, entry)
    for day in used:
        marker = Path(store.used_path(key, day.isoformat()))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def _keys(store: Store) -> set[str]:
    return {path.rsplit("/", 1)[-1][:-5] for path in store.find("entries")}


def test_entries_unused_for_n_days_go_with_their_blobs(store, tmp_path):
    old, used, new = "a" * 64, "b" * 64, "c" * 64
    _entry(store, tmp_path, old, [b"old" * 100, b"shared"], NOW - dt.timedelta(days=40))
    _entry(store, tmp_path, used, [b"used" * 100, b"shared"], NOW - dt.timedelta(days=40),
           used=[(NOW - dt.timedelta(days=35)).date(), (NOW - dt.timedelta(days=2)).date()])
    _entry(store, tmp_path, new, [b"new" * 100], NOW - dt.timedelta(days=1))
    result = collect(store, max_age_days=30, max_size=None, now=NOW)
    assert result.removed_entries == [old] and result.kept_entries == 2
    assert _keys(store) == {used, new}
    blobs = {path.rsplit("/", 1)[-1] for path in store.find("blobs")}
    import hashlib

    assert hashlib.sha256(b"old" * 100).hexdigest() not in blobs  # released by the removed entry
    assert hashlib.sha256(b"shared").hexdigest() in blobs  # still named by a kept entry
    assert [path.rsplit("/", 1)[-1] for path in store.find("used")] == [(NOW - dt.timedelta(days=2)).date().isoformat()]


def test_a_size_budget_keeps_the_most_recently_used(store, tmp_path):
    for age, key in ((3, "d" * 64), (2, "e" * 64), (1, "f" * 64)):
        _entry(store, tmp_path, key, [key.encode() * 16], NOW - dt.timedelta(days=age))  # 1024 bytes each
    result = collect(store, max_age_days=None, max_size=2500, now=NOW)
    assert _keys(store) == {"e" * 64, "f" * 64} and result.removed_entries == ["d" * 64]
    assert result.kept_bytes == 2048 and result.removed_bytes == 1024


def test_orphans_wait_an_hour_and_damaged_entries_go(store, tmp_path):
    _entry(store, tmp_path, "1" * 64, [b"kept"], NOW)
    store.upload_blobs({"9" * 64: tmp_path / "outputs-1111" / "out0.bin"})  # an upload in progress: no entry yet
    torn = Path(store.entry_path("2" * 64))  # a local folder: a write cut short
    torn.parent.mkdir(parents=True)
    torn.write_text('{"format": 1, "key": "22')
    result = collect(store, max_age_days=None, max_size=None, now=NOW)
    assert result.removed_entries == ["2" * 64] and not result.removed_blobs
    assert _keys(store) == {"1" * 64}
    later = collect(store, max_age_days=None, max_size=None, now=NOW + dt.timedelta(hours=2))
    assert [path.rsplit("/", 1)[-1] for path in later.removed_blobs] == ["9" * 64]


def test_dry_run_removes_nothing(store, tmp_path):
    _entry(store, tmp_path, "a" * 64, [b"x"], NOW - dt.timedelta(days=400))
    result = collect(store, max_age_days=1, max_size=None, now=NOW, dry_run=True)
    assert result.removed_entries == ["a" * 64] and _keys(store) == {"a" * 64}


def test_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELBUILD_CACHE_URL", raising=False)
    assert cli.main(["cache", "status"]) == 0
    assert capsys.readouterr().out == "cache: none (not configured)\n"
    assert cli.main(["cache", "push"]) == 2
    assert capsys.readouterr().err.startswith("modelbuild cache push: no cache is configured: add "
                                              "[tool.modelbuild.cache] url = \"...\" to pyproject.toml")
    (tmp_path / "modelbuild.toml").write_text('[cache]\nurl = "cache"\nmax_age_days = 10\n')
    _entry(Store(CacheConfig(url=str(tmp_path / "cache"))), tmp_path, "a" * 64, [b"x"], NOW - dt.timedelta(days=11))
    assert cli.main(["cache", "gc", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "gc: entries unused for 10 days; blobs no entry names (dry run: nothing is removed)",
        "gc: would remove 1 entries and 1 blobs (1 B); kept 0 entries (0 B)"]
    assert cli.main(["cache", "gc", "--max-size", "lots"]) == 2
    assert "--max-size: expected a size such as 500MB" in capsys.readouterr().err
