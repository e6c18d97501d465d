"""Wall time of a no-op `doit build:<recipe>` (everything up to date): the cost of task creation.

Usage: python benchmarks/noop.py [RECIPE] [--runs N]
Builds the recipe once if needed, then times N up-to-date runs in fresh processes.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="ffdnet")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    doit = [sys.executable, "-m", "doit", f"build:{args.recipe}"]
    subprocess.run(doit, cwd=ROOT, check=True, capture_output=True)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = subprocess.run(doit, cwd=ROOT, check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if any(line.startswith(".") for line in result.stdout.splitlines()):
            print(f"not a no-op: a task ran:\n{result.stdout}", file=sys.stderr)
            return 1
    print(f"no-op doit build:{args.recipe}: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s over {args.runs} runs (target < 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
