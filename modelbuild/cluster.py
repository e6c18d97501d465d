"""Builds beyond one machine: Dask workers build the recipes, the shared cache brings the results back.

`modelbuild build --scheduler tcp://HOST:8786 [RECIPE...]` submits one task per recipe to a Dask
distributed scheduler. A worker builds its recipe in a fresh process (`python -m modelbuild build
build:<recipe>`: the worker never forks a process that imported torch) inside a private mirror of
the project folder: symlinks to everything but artifacts/ and the doit state, so that builds of
several recipes never race on one folder's build state. Every stage a worker builds goes to the
project's cache. When the workers are done, the ordinary build runs here: it restores each stage
from the cache and reports as any build does.

The project folder must be at the same path on the workers (a shared filesystem, or a checkout at
that path), and the cache must be one they all reach (S3, a shared folder, ...), writable.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from modelbuild.cache.config import URL_VARIABLE, CacheConfigError, load_config
from modelbuild.cache.keys import ORIGIN_VARIABLE

PRIVATE = ("artifacts", ".doit.db", ".modelbuild.lock")  # not mirrored: each worker has its own (prefixes)
OUTPUT_TAIL = 6000


class ClusterError(RuntimeError):
    """A cluster build cannot start (one line)."""


def build_recipe_on_worker(root: str, recipe: str, environment: dict[str, str]) -> dict[str, Any]:
    """Dask task: build one recipe in a mirror of the project at `root`, in a fresh process; its exit code
    and the tail of its output."""
    started = time.perf_counter()
    mirror = Path(tempfile.mkdtemp(prefix=f"modelbuild-{recipe}-"))
    try:
        for entry in Path(root).iterdir():
            if not entry.name.startswith(PRIVATE):
                (mirror / entry.name).symlink_to(entry)
        process = subprocess.run([sys.executable, "-m", "modelbuild", "build", f"build:{recipe}"], cwd=mirror,
                                 env={**_without_dask_thread_limits(os.environ), **environment, ORIGIN_VARIABLE: root},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        shutil.rmtree(mirror, ignore_errors=True)
    return {"recipe": recipe, "code": process.returncode, "output": process.stdout[-OUTPUT_TAIL:],
            "seconds": time.perf_counter() - started, "worker": _worker_address()}


def _without_dask_thread_limits(environ) -> dict[str, str]:
    """The environment without what Dask's nanny sets for its worker (OMP_NUM_THREADS=1, ...): the build gets
    the threads a local build has, and so the same validation figures (float sums depend on the thread count)."""
    environment = dict(environ)
    try:
        import dask

        limits = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    except ImportError:
        limits = {}
    for name, value in limits.items():
        if environment.get(name) == str(value):
            del environment[name]
    return environment


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "a worker"


def build_on_cluster(scheduler: str, root: Path, targets: list[str], write: Callable[[str], None] = print) -> int:
    """Build the recipes named by `targets` (every recipe if none) on the cluster, then restore them here."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ClusterError("modelbuild build --scheduler needs Dask distributed: pip install 'modelbuild[cluster]'") \
            from None
    try:
        config = load_config(root)
    except CacheConfigError as err:
        raise ClusterError(str(err)) from None
    if not config.enabled or config.read_only:
        raise ClusterError("modelbuild build --scheduler needs a writable cache that the workers share (their builds "
                           "come back through it): set [tool.modelbuild.cache] url in pyproject.toml, or "
                           "MODELBUILD_CACHE_URL" + (f"; the cache at {config.url} is read-only" if config.enabled else ""))
    recipes = _recipes(root, targets)
    environment = {URL_VARIABLE: config.url}  # resolved: a relative folder would be relative to the mirror
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    built, failed = [], []
    with client:
        write(f"building {len(recipes)} recipe(s) on {scheduler} ({len(client.scheduler_info()['workers'])} workers)")
        futures = [client.submit(build_recipe_on_worker, str(root), name, environment, pure=False,
                                 key=f"modelbuild-build-{name}-{uuid.uuid4().hex[:8]}") for name in recipes]
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as err:  # the worker died, or the task could not run there
                failed.append(future.key)
                write(f"{future.key}: the worker failed: {type(err).__name__}: {err}")
                continue
            outcome = "done" if result["code"] == 0 else f"FAILED (exit code {result['code']})"
            write(f"build:{result['recipe']} on {result['worker']}: {outcome} in {result['seconds']:.1f} s")
            if result["code"] == 0:
                built.append(result["recipe"])
            else:
                failed.append(result["recipe"])
                write("\n".join("    " + text for text in result["output"].rstrip().splitlines()))
    code = 0
    if built:
        write(f"restoring {', '.join(sorted(built))} from the cache")
        code = _local_build([f"build:{name}" for name in sorted(built)])
    return 1 if failed else code


def _recipes(root: Path, targets: list[str]) -> list[str]:
    """Recipe names from 'name' or 'build:name' targets (every recipe of the project when there are none)."""
    from modelbuild.project import load_project  # the recipe schema: Dask workers import this module too

    known = [item.name for item in load_project(root)]
    names = [target.removeprefix("build:") for target in targets] or known
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ClusterError(f"no recipe named {unknown[0]!r} in {root / 'recipes'}; the recipes are "
                           f"{', '.join(known) or 'none'} (give recipe names or build:<name>)")
    return list(dict.fromkeys(names))


def _local_build(targets: list[str]) -> int:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from modelbuild import tasks  # doit and the recipe schema, as above

    return DoitMain(ModuleTaskLoader(tasks)).run(["run", *targets])
