"""A second clone with the same shared cache builds from downloads only: in what fraction of the cold time?

    python benchmarks/shared_cache.py [--recipes ffdnet resnet50] [--cache s3|folder]

Two clones of a project holding the given shipped recipes (and samples/) name one cache in their
pyproject.toml: a bucket on moto's S3 server on 127.0.0.1 (default), or a local folder. The first
clone builds from scratch, uploading every stage; the second runs the same build. Each build is
`python -m modelbuild build build:<recipe>...` in a fresh process, timed on the wall clock. Prints
the cold time, the warm-from-cache time, their ratio, whether the second clone ran no stage (every
stage record says `restored_from` the cache) and whether its artifacts, reports and manifests are
byte-identical to the first clone's (stage records and timings.json hold times: left out), naming
any file that is not. Exit code 0 when both hold.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cache"))  # moto_s3: the tests' S3 server


def make_clone(root: Path, recipes: list[str], url: str, storage_options: dict[str, str]) -> Path:
    """A project folder with the recipes, the samples and a pyproject.toml naming the cache."""
    (root / "recipes").mkdir(parents=True)
    for name in recipes:
        shutil.copy(REPO / "recipes" / f"{name}.yaml", root / "recipes")
    shutil.copytree(REPO / "samples", root / "samples")
    options = "".join(f"{key} = {json.dumps(value)}\n" for key, value in storage_options.items())
    (root / "pyproject.toml").write_text(f"[tool.modelbuild.cache]\nurl = {json.dumps(url)}\n"
                                         + (f"[tool.modelbuild.cache.storage_options]\n{options}" if options else ""))
    return root


def timed_build(root: Path, recipes: list[str]) -> tuple[float, str]:
    """Build the recipes in a fresh process; (wall seconds, its output). Exits if the build fails."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "modelbuild", "build", *(f"build:{r}" for r in recipes)], cwd=root,
                             env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"the build in {root} failed (exit code {process.returncode}):\n{process.stdout[-4000:]}")
    return seconds, process.stdout


def artifact_bytes(root: Path) -> dict[str, bytes]:
    """Every file under artifacts/ but the stage records and timings.json."""
    folder = root / "artifacts"
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and ".records" not in path.parts and path.name != "timings.json"}


def stage_records(root: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((root / "artifacts").glob("*/.records/*.json"))]


@contextlib.contextmanager
def cache(kind: str, scratch: Path):
    """(url, storage options) of an empty cache of that kind, for the block's duration."""
    if kind == "folder":
        yield str(scratch / "cache"), {}
        return
    from moto_s3 import new_bucket, s3_server

    with s3_server() as endpoint:
        yield new_bucket(endpoint), {"endpoint_url": endpoint}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["ffdnet", "resnet50"])
    parser.add_argument("--cache", choices=["s3", "folder"], default="s3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shared-cache-") as scratch, cache(args.cache, Path(scratch)) as (url, options):
        first = make_clone(Path(scratch) / "first", args.recipes, url, options)
        second = make_clone(Path(scratch) / "second", args.recipes, url, options)
        cold, _ = timed_build(first, args.recipes)
        warm, output = timed_build(second, args.recipes)
        records = stage_records(second)
        restored = sum("restored_from" in record for record in records)
        cold_files, warm_files = artifact_bytes(first), artifact_bytes(second)
        identical = cold_files == warm_files
        print(f"recipes: {', '.join(args.recipes)}; cache: {args.cache} ({url})")
        print(f"cold build (first clone, uploads every stage): {cold:.1f} s")
        print(f"warm build (second clone, from the cache):      {warm:.1f} s")
        print(f"ratio warm/cold: {warm / cold:.1%}")
        print(f"stages restored, not run: {restored} of {len(records)} "
              f"({output.count('restored from the cache')} 'restored from the cache' lines)")
        print(f"byte-identical artifacts, reports and manifests: {'yes' if identical else 'no'} "
              f"({len(warm_files)} files)")
        for name in sorted(set(cold_files) | set(warm_files)):
            if cold_files.get(name) != warm_files.get(name):
                print(f"  differs: {name}" + ("" if name in warm_files and name in cold_files else " (only in one)"))
        return 0 if identical and restored == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
