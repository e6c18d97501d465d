"""Kill builds at random points and check that nothing half-written is left in place.

    python benchmarks/kill_builds.py --kills 50 [--seed 0] [--recipe ffdnet]

A small project (the tiny FFDNet of the tests, or a shipped recipe with --recipe) is built once
cleanly; its artifacts, reports and manifest are the reference. Then, --kills times: a build
from scratch is started and SIGKILLed after a random delay; every artifact then in place must
be whole (identical to the reference: a half-written one would not be); the next build must
succeed and leave everything byte-identical to the reference.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def make_project(folder: Path, recipe: str | None) -> tuple[Path, str]:
    """A project folder with one recipe; (root, recipe name)."""
    if recipe is None:
        from projects import make_tiny_project

        folder.mkdir(parents=True)
        root = make_tiny_project(folder)
        name = "tiny"
    else:
        root, name = folder, recipe
        (root / "recipes").mkdir(parents=True)
        shutil.copy(REPO / "recipes" / f"{recipe}.yaml", root / "recipes")
        shutil.copytree(REPO / "samples", root / "samples")
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    return root, name


def build(root: Path, name: str, kill_after: float | None = None) -> tuple[int, float]:
    """`doit build:<name>` in `root`; killed (SIGKILL, whole process group) after `kill_after` seconds if given."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "doit", f"build:{name}"], cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return process.returncode, time.perf_counter() - started


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every finished output in a recipe's artifact folder (temporaries and the stat cache left out)."""
    from modelbuild.hashing import artifact_sha256

    kept = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if ".tmp-" in path.name or ".old-" in path.name or path.name in (".records", "timings.json"):
            continue
        kept[path.name] = artifact_sha256(path)
    return kept


def kill_and_recover(root: Path, name: str, kills: int, seed: int, full_seconds: float,
                     reference: dict[str, str]) -> list[str]:
    """Run the kill/recover cycles; a list of problems (empty when every cycle held)."""
    rng = random.Random(seed)
    folder = root / "artifacts" / name
    problems = []
    for cycle in range(kills):
        shutil.rmtree(root / "artifacts", ignore_errors=True)
        for leftover in root.glob(".doit.db*"):
            leftover.unlink()
        delay = rng.uniform(0.5, full_seconds)
        build(root, name, kill_after=delay)
        partial = {file: digest for file, digest in digests(folder).items() if reference.get(file) != digest}
        partial.pop("manifest.json", None)  # rewritten after every stage: whole, but not yet the final one
        if partial:
            problems.append(f"cycle {cycle} (killed at {delay:.1f} s): not whole: {', '.join(partial)}")
        code, _ = build(root, name)
        if code != 0:
            problems.append(f"cycle {cycle}: the build after the kill failed (exit {code})")
        elif digests(folder) != reference:
            differing = [f for f in reference if digests(folder).get(f) != reference[f]]
            problems.append(f"cycle {cycle}: the build after the kill differs from a clean one: {', '.join(differing)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", help="a shipped recipe to build instead of the tiny FFDNet")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kill-builds-") as folder:
        root, name = make_project(Path(folder) / "project", args.recipe)
        code, seconds = build(root, name)
        if code != 0:
            print(f"the clean build failed (exit {code})")
            return 1
        reference = digests(root / "artifacts" / name)
        print(f"clean build: {seconds:.1f} s, {len(reference)} outputs")
        started = time.perf_counter()
        problems = kill_and_recover(root, name, args.kills, args.seed, seconds, reference)
    print(f"{args.kills} kills in {time.perf_counter() - started:.0f} s: {len(problems)} problem(s)")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
