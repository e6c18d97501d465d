"""`modelbuild build --scheduler`: a Dask LocalCluster of two worker processes builds two recipes, the shared cache
brings them back, to the bytes of a serial build."""
from __future__ import annotations

import shutil

import pytest
import yaml
from cache.helpers import artifact_bytes, forbid_building, set_cache
from projects import TINY_RECIPE, make_tiny_project, run_doit

from modelbuild import cli, tasks

pytestmark = pytest.mark.slow


def _two_recipes(root):
    root.mkdir()
    make_tiny_project(root)
    other = {**TINY_RECIPE, "name": "other", "model": {**TINY_RECIPE["model"], "args": {"channels": 1, "features": 6,
                                                                                        "layers": 2}, "weights": None}}
    (root / "recipes" / "other.yaml").write_text(yaml.safe_dump(other, sort_keys=False))
    return root


def test_two_workers_build_two_recipes_to_the_bytes_of_a_serial_build(tmp_path, monkeypatch, capfd):
    distributed = pytest.importorskip("distributed", reason="the cluster test needs Dask: pip install -e '.[test]'")
    project = _two_recipes(tmp_path / "project")
    serial = tmp_path / "serial"
    shutil.copytree(project, serial)
    set_cache(project, str(tmp_path / "shared-cache"))

    code, _ = run_doit(serial, monkeypatch, "build")  # no cache configured there
    assert code == 0

    monkeypatch.chdir(project)
    tasks.forget_project()
    forbid_building(monkeypatch)  # nothing is built in this process: the workers build, the cache restores
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster:
        capfd.readouterr()
        code = cli.main(["build", "--scheduler", cluster.scheduler_address, "tiny", "build:other"])
    out = capfd.readouterr().out
    assert code == 0, out
    assert f"building 2 recipe(s) on {cluster.scheduler_address} (2 workers)" in out
    assert "build:tiny on tcp://127.0.0.1:" in out and "build:other on tcp://127.0.0.1:" in out
    assert out.count("restored from the cache") == 8  # onnx, two variants, validation, per recipe
    for recipe in ("tiny", "other"):
        assert artifact_bytes(project, recipe) == artifact_bytes(serial, recipe)


def test_without_a_shared_cache_the_scheduler_is_refused(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason="the cluster test needs Dask: pip install -e '.[test]'")
    monkeypatch.chdir(make_tiny_project(tmp_path))
    monkeypatch.delenv("MODELBUILD_CACHE_URL", raising=False)
    assert cli.main(["build", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith("modelbuild build: modelbuild build --scheduler needs a writable cache "
                                              "that the workers share")


def test_a_worker_builds_in_a_mirror_it_removes(tmp_path, monkeypatch):
    import tempfile

    from modelbuild.cluster import build_recipe_on_worker

    project = tmp_path / "project"
    project.mkdir()
    make_tiny_project(project)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = build_recipe_on_worker(str(project), "missing", {"MODELBUILD_CACHE_URL": "off"})
    assert result["recipe"] == "missing" and result["code"] != 0
    assert "build:missing" in result["output"] and result["worker"] == "a worker"  # doit: no such task
    assert list(scratch.iterdir()) == []
