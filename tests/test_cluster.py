"""`modelbuild build --scheduler`: a Dask LocalCluster of two worker processes builds the shipped ffdnet recipe and a
small one side by side, the shared cache brings them back, to the bytes of a serial build. (The shipped resnet50 and
ffdnet_flexible are left out: they take minutes on two cores; benchmarks/shared_cache.py covers resnet50.)"""
from __future__ import annotations

import re
import shutil

import pytest
from cache.helpers import artifact_bytes, forbid_building, set_cache
from projects import REPO, make_tiny_project, run_doit

from modelbuild import cli, tasks

pytestmark = pytest.mark.slow


def _ffdnet_and_tiny(root):
    """A project with the shipped recipes/ffdnet.yaml (and its sample) and the tests' tiny recipe."""
    root.mkdir()
    make_tiny_project(root)
    shutil.copy(REPO / "recipes" / "ffdnet.yaml", root / "recipes")
    shutil.copytree(REPO / "samples", root / "samples")
    return root


def test_two_workers_build_two_recipes_to_the_bytes_of_a_serial_build(tmp_path, monkeypatch, capfd):
    distributed = pytest.importorskip("distributed", reason="the cluster test needs Dask: pip install -e '.[test]'")
    project = _ffdnet_and_tiny(tmp_path / "project")
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
        code = cli.main(["build", "--scheduler", cluster.scheduler_address, "ffdnet", "build:tiny"])
    out = capfd.readouterr().out
    assert code == 0, out
    assert f"building 2 recipe(s) on {cluster.scheduler_address} (2 workers)" in out
    workers = re.findall(r"^build:(?:ffdnet|tiny) on (tcp://127\.0\.0\.1:\d+): done in ", out, re.MULTILINE)
    assert len(set(workers)) == 2, out  # one recipe per worker, side by side
    stages = sum(len(list((serial / "artifacts" / recipe / ".records").glob("*.json"))) for recipe in ("ffdnet", "tiny"))
    assert stages >= 8 and out.count("restored from the cache") == stages  # every stage of both recipes
    for recipe in ("ffdnet", "tiny"):
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
