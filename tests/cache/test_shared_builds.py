"""Two clones of a project share a cache (moto's S3 server, a local folder): the first builds and uploads, the
second only downloads, to the same bytes. Damaged and partial entries are never used; read-only never writes."""
from __future__ import annotations

import json

import pytest
from cache.moto_s3 import new_bucket
from cache.helpers import STAGES, artifact_bytes, forbid_building, make_clone
from projects import edit_recipe, run_doit

from modelbuild import manifest
from modelbuild.cache import commands, keys
from modelbuild.cache.config import CacheConfig
from modelbuild.cache.stage import upload
from modelbuild.cache.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first(tmp_path_factory, s3_endpoint):
    """The first clone, built once with an S3 cache (its build uploaded every stage): (root, url, options)."""
    options = {"endpoint_url": s3_endpoint}
    url = new_bucket(s3_endpoint)
    root = make_clone(tmp_path_factory.mktemp("first") / "project", url, options)
    monkeypatch = pytest.MonkeyPatch()
    try:
        code, executed = run_doit(root, monkeypatch)
    finally:
        monkeypatch.undo()
    assert code == 0 and executed == STAGES, (root / "doit-report.txt").read_text()
    return root, url, options


def _store(url: str, options: dict, read_only: bool = False) -> Store:
    return Store(CacheConfig(url=url, storage_options=options, read_only=read_only))


def _push(root, store: Store) -> int:
    """Upload every stage built in `root` (what `modelbuild cache push` does, to any store)."""
    return sum(upload(store, s.cache_key, s.recipe, s.key, s.record, s.outputs) for s in commands.local_stages(root))


def _build(root, monkeypatch, capfd, *targets):
    capfd.readouterr()
    code, executed = run_doit(root, monkeypatch, *targets)
    return code, executed, capfd.readouterr().out


def test_the_second_clone_only_downloads_from_s3(first, tmp_path, monkeypatch, capfd):
    root, url, options = first
    second = make_clone(tmp_path / "second", url, options)
    forbid_building(monkeypatch)
    code, executed, out = _build(second, monkeypatch, capfd)
    assert code == 0 and executed == STAGES, out
    assert out.count("restored from the cache") == 5 and out.count("why: first build") == 5
    assert artifact_bytes(second) == artifact_bytes(root)  # ONNX, .mlmodel, .mlpackage files, reports, manifest
    timings = json.loads((second / "artifacts" / "tiny" / "timings.json").read_text())
    assert {stage: timing.get("restored_from") for stage, timing in timings.items()} == dict.fromkeys(timings, url)
    assert len(timings) == 5 and not any("restored_from" in r for r in records(root))  # the first clone built
    assert "tiny_prog.mlpackage/Data/com.apple.CoreML/weights/weight.bin" in artifact_bytes(second)
    assert run_doit(second, monkeypatch) == (0, [])  # restored stages are up to date, as built ones


def test_a_no_op_build_computes_no_key(first, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a cache key was computed for a stage that did not run")

    monkeypatch.setattr(keys, "stage_key", refuse)
    assert run_doit(first[0], monkeypatch) == (0, [])


def test_push_to_a_folder_status_and_restore(first, tmp_path, monkeypatch, capfd):
    root = first[0]
    folder = tmp_path / "shared-folder"
    monkeypatch.setenv("MODELBUILD_CACHE_URL", str(folder))
    monkeypatch.setattr(keys, "stage_key", None)  # push uploads under the keys kept at build time
    lines: list[str] = []
    assert commands.push(root, write=lines.append) == 0
    assert lines[-1] == "push: 5 uploaded, 0 already in the cache, 0 skipped"
    lines.clear()
    commands.push(root, write=lines.append)
    assert lines[-1] == "push: 0 uploaded, 5 already in the cache, 0 skipped"
    lines.clear()
    assert commands.status(root, write=lines.append) == 0
    assert lines[:3] == [f"cache: {folder}  (MODELBUILD_CACHE_URL (over pyproject.toml [tool.modelbuild.cache]))",
                         "mode: read-write", "reachable: yes"]
    assert sum(line.endswith("in the cache") for line in lines) == 5
    monkeypatch.undo()

    second = make_clone(tmp_path / "second", str(folder))
    forbid_building(monkeypatch)
    code, executed, out = _build(second, monkeypatch, capfd)
    assert code == 0 and out.count("restored from the cache") == 5, out
    assert artifact_bytes(second) == artifact_bytes(root)


def test_pull_restores_without_building_and_names_what_is_missing(first, tmp_path, monkeypatch, capfd):
    root = first[0]
    store = _store(str(tmp_path / "store"), {})
    assert _push(root, store) == 5
    validate_key = commands.local_stages(root)
    validate_key = next(s.cache_key for s in validate_key if s.key == "validate")
    store.delete([store.entry_path(validate_key)])

    second = make_clone(tmp_path / "second", store.url)
    forbid_building(monkeypatch)
    monkeypatch.chdir(second)
    capfd.readouterr()
    assert commands.pull(second, []) != 0
    out = capfd.readouterr().out
    assert out.count("restored from the cache") == 4
    assert "pull: some stages are not in the cache (above); `modelbuild build` builds them" in out
    assert manifest.read_record(second / "artifacts" / "tiny", "validate") is None  # nothing recorded for it
    assert not (second / "artifacts" / "tiny" / "report.json").exists()
    assert manifest.read_record(second / "artifacts" / "tiny", "onnx")["outcome"] == "built"

    monkeypatch.setenv("MODELBUILD_CACHE_ONLY", "1")  # what pull sets: a build that may only restore
    code, executed = run_doit(second, monkeypatch, "validate:tiny")
    assert code != 0 and executed == ["validate:tiny"]
    assert f"recipes/tiny.yaml: validate: not in the cache at {store.url}; not built because MODELBUILD_CACHE_ONLY " \
           "is set" in (second / "doit-report.txt").read_text()


def test_a_corrupt_object_is_rebuilt_never_used(first, empty_cache, tmp_path, monkeypatch, capfd):
    root = first[0]
    url, options = empty_cache
    store = _store(url, options)
    _push(root, store)
    record = manifest.read_record(root / "artifacts" / "tiny", "coreml.prog")
    weights = store.blob_path(record["files"]["Data/com.apple.CoreML/weights/weight.bin"])
    data = bytearray(store.fs.cat_file(weights))
    data[len(data) // 2] ^= 0xFF
    store.fs.pipe_file(weights, bytes(data))  # same size, other bytes

    second = make_clone(tmp_path / "second", url, options)
    code, executed, out = _build(second, monkeypatch, capfd, "coreml:tiny.prog")
    assert code == 0 and executed == ["coreml:tiny.prog"]
    assert "does not match its sha256; building it instead" in out and "restored from the cache" not in out
    assert artifact_bytes(second) == {k: v for k, v in artifact_bytes(root).items() if k.startswith("tiny_prog")} | {
        "manifest.json": (second / "artifacts" / "tiny" / "manifest.json").read_bytes()}

    third = make_clone(tmp_path / "third", url, options)  # the rebuild repaired the entry
    forbid_building(monkeypatch)
    code, _, out = _build(third, monkeypatch, capfd, "coreml:tiny.prog")
    assert code == 0 and "restored from the cache" in out
    assert (third / "artifacts/tiny/tiny_prog.mlpackage/Data/com.apple.CoreML/weights/weight.bin").read_bytes() == \
        (root / "artifacts/tiny/tiny_prog.mlpackage/Data/com.apple.CoreML/weights/weight.bin").read_bytes()


def test_an_interrupted_upload_and_a_truncated_entry_are_ignored(empty_cache, tmp_path, monkeypatch, capfd):
    url, options = empty_cache
    store = _store(url, options)

    def killed(self, key, entry):  # the process dies between the blobs and the entry
        raise KeyboardInterrupt

    clone = make_clone(tmp_path / "a", url, options)
    with monkeypatch.context() as patch:
        patch.setattr(Store, "write_entry", killed)
        with pytest.raises(KeyboardInterrupt):
            run_doit(clone, monkeypatch, "onnx:tiny")
    assert store.find("blobs") and not store.find("entries")

    clone = make_clone(tmp_path / "b", url, options)
    code, _, out = _build(clone, monkeypatch, capfd, "onnx:tiny")
    assert code == 0 and "restored from the cache" not in out  # blobs without an entry are no entry
    entry_path = store.entry_path(keys_of(clone)["onnx"])
    committed = store.fs.cat_file(entry_path)
    store.fs.pipe_file(entry_path, committed[: len(committed) // 2])  # a torn write on a filesystem without PUT

    clone = make_clone(tmp_path / "c", url, options)
    code, _, out = _build(clone, monkeypatch, capfd, "onnx:tiny")
    assert code == 0 and "restored from the cache" not in out
    assert store.fs.cat_file(entry_path) != committed[: len(committed) // 2]  # the build committed it again

    clone = make_clone(tmp_path / "d", url, options)
    forbid_building(monkeypatch)
    code, _, out = _build(clone, monkeypatch, capfd, "onnx:tiny")
    assert code == 0 and "restored from the cache" in out


def records(root) -> list[dict]:
    return [manifest.read_record(root / "artifacts" / "tiny", stage.key) for stage in commands.local_stages(root)]


def keys_of(root) -> dict[str, str]:
    return {stage.key: stage.cache_key for stage in commands.local_stages(root)}


def test_read_only_restores_but_never_writes(first, s3_endpoint, tmp_path, monkeypatch, capfd):
    root = first[0]
    options = {"endpoint_url": s3_endpoint}
    full, empty = _store(new_bucket(s3_endpoint), options), _store(new_bucket(s3_endpoint), options)
    _push(root, full)

    reader = make_clone(tmp_path / "reader", full.url, options, read_only=True)
    with monkeypatch.context() as patch:
        forbid_building(patch)
        code, _, out = _build(reader, monkeypatch, capfd)
    assert code == 0 and out.count("restored from the cache") == 5
    assert not full.find("used")  # not even a use marker

    builder = make_clone(tmp_path / "builder", empty.url, options, read_only=True)
    code, _, out = _build(builder, monkeypatch, capfd, "onnx:tiny")
    assert code == 0 and not empty.find("blobs") and not empty.find("entries")

    writable = make_clone(tmp_path / "writable", empty.url, options)
    monkeypatch.setenv("MODELBUILD_CACHE_READ_ONLY", "1")  # CI's override of a writable configuration
    code, _, _ = _build(writable, monkeypatch, capfd, "onnx:tiny")
    assert code == 0 and not empty.find("entries")
    with pytest.raises(commands.CacheCommandError, match="is read-only .*; this command writes to it"):
        commands.push(writable)


def test_failed_stages_are_never_cached(tmp_path, monkeypatch, capfd):
    store = _store(str(tmp_path / "store"), {})
    clone = make_clone(tmp_path / "clone", store.url)
    edit_recipe(clone, lambda d: d["outputs"].update(extra={}))  # the model has one output, not two
    code, _, out = _build(clone, monkeypatch, capfd, "onnx:tiny")
    assert code != 0 and "OutputSelectionError" in out
    assert not store.find("entries") and not store.find("blobs")


def test_an_unreachable_cache_costs_one_line(tmp_path, monkeypatch, capfd):
    clone = make_clone(tmp_path / "clone", "s3://nowhere/cache", {"endpoint_url": "http://127.0.0.1:9"})
    code, _, out = _build(clone, monkeypatch, capfd, "coreml:tiny.viatorch")
    assert code == 0, out + (clone / "doit-report.txt").read_text()
    assert out.count("cache: ") == 1 and "building without the cache" in out
