"""Recipe fuzzer: mutate the shipped recipes and check that loading them costs one clean line, never a crash.

    python benchmarks/fuzz_recipes.py --cases 10000 [--seed 0]

Each case is a shipped recipe with one mutation (flipped bytes, other encodings, deleted or
duplicated lines, nasty values: NaN, 10**30, huge strings, YAML tags, merge keys, alias bombs,
deep nesting, ...). It is written into a project folder and loaded with `load_recipe`; a recipe
that loads then has its doit task dicts made, as `doit list` would. A case passes when it loads
and makes its tasks, or fails with a `RecipeError` whose every line is one readable line; it
fails on any other exception (a traceback for the user), on a message line longer than
MAX_LINE, on a "modelbuild bug" line, or when it takes more than --limit seconds (a hang).
"""
from __future__ import annotations

import argparse
import collections
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "recipes").glob("*.yaml"))

NASTY_VALUES = [
    ".nan", ".inf", "-.inf", "1e400", "10000000000000000000000000000000", "-1", "0", "2147483648",
    "9223372036854775808", "''", "'x' ", "~", "true", "[]", "{}", "[1, [2, [3]]]", "'" + "x" * 20000 + "'",
    "\"\\x00\"", "!!binary aGVsbG8=", "!!python/object:os.system {}", "!!set {a, b}", "!!timestamp 2001-12-14",
    "!custom 3", "*undefined", "&anchor 3", "2024-01-01", "0x1F", "0o17", "1_000", "+.5", "'../../etc/passwd'",
    "'/abs/path.onnx'", "'a\\nb.onnx'", "os:system", "'os:system\\n'", "builtins:eval", "'torch.nn:Linear'",
    "[1, 3, 20000, 20000]", "[1, 3, 0, 5]", "[-1]", "[1, 2, 3, 4, 5, 6]", "['a']", "[1.5, 2]", "{2: [1]}",
    "'\\u202e'", "'é'", "yes", "no", "null", "'   '",
]
ALIAS_BOMB = "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
                     for p, k in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh"))


def mutate(text: str, rng: random.Random) -> bytes:
    """One random mutation of a recipe's text, as the bytes of the file."""
    lines = text.splitlines(keepends=True)
    kind = rng.choice(["bytes", "encoding", "delete", "duplicate", "swap", "value", "insert", "indent", "truncate",
                       "nesting", "bomb", "key", "whole"])
    if kind == "bytes":
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.choice([0, 7, 9, 27, 127, 0x80, 0xC3, 0xE9, 0xFF, rng.randrange(256)])
        return bytes(data)
    if kind == "encoding":
        accented = text.replace("description: ", "description: é ", 1)
        return rng.choice([accented.encode("latin-1", "replace"), text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode(),
                           accented.encode("cp1252", "replace")])
    if kind == "truncate":
        return text.encode()[: rng.randrange(len(text))]
    i = rng.randrange(len(lines))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "value":
        candidates = [n for n, line in enumerate(lines) if re.match(r"^\s*[\w-]+:\s*\S", line)]
        n = rng.choice(candidates)
        key = lines[n].split(":", 1)[0]
        lines[n] = f"{key}: {rng.choice(NASTY_VALUES)}\n"
    elif kind == "insert":
        indent = " " * rng.choice([0, 2, 4])
        lines.insert(i, indent + rng.choice(["unknown_key: 1\n", "<<: {name: x}\n", "? [a, b]\n: 1\n", "- item\n",
                                             "x: &a 1\n", "y: *a\n", "%TAG ! tag:x\n", "---\n", "...\n",
                                             "\t: tab\n", "key: 'unterminated\n", "{a: 1\n"]))
    elif kind == "indent":
        lines[i] = rng.choice([" ", "   ", "\t"]) + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
    elif kind == "nesting":
        depth = rng.choice([60, 500, 5000])
        lines.insert(i, rng.choice(["deep: " + "[" * depth + "]" * depth + "\n",
                                    "deep: " + "{a: " * depth + "1" + "}" * depth + "\n"]))
    elif kind == "bomb":
        return (ALIAS_BOMB + text).encode()
    elif kind == "key":
        candidates = [n for n, line in enumerate(lines) if re.match(r"^\s*[\w-]+:", line)]
        n = rng.choice(candidates)
        key = lines[n].split(":", 1)[0]
        lines[n] = lines[n].replace(key, key.rstrip("s") + rng.choice(["_", "x", "S", ""]) + "e", 1)
    else:  # whole
        return rng.choice([b"", b"- a\n- b\n", b"just text\n", b"42\n", b"null\n", b"\x00\x01\x02", b"name: x\n"])
    return "".join(lines).encode()


class Hang(Exception):
    """A case took longer than its limit."""


def run_case(path: Path, limit: float) -> tuple[str, str]:
    """Load one recipe file and make its tasks; (outcome, detail). Outcomes: loaded, refused, traceback, hang,
    long-line, bug."""
    from modelbuild.recipe.loader import MAX_LINE

    def alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, limit)
            return _load_and_make_tasks(path, MAX_LINE)
        finally:  # an alarm due while disarming lands in the outer `except Hang`
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Hang:
        return "hang", f"over {limit} s"
    except BaseException as err:  # noqa: BLE001 - anything else is what the fuzzer is looking for
        return "traceback", f"{type(err).__name__}: {str(err)[:200]}"
    finally:
        signal.signal(signal.SIGALRM, previous)


def _load_and_make_tasks(path: Path, max_line: int) -> tuple[str, str]:
    from modelbuild import tasks
    from modelbuild.project import Loaded
    from modelbuild.recipe import RecipeError, load_recipe

    try:
        recipe = load_recipe(path)
    except RecipeError as err:
        long = [line for line in err.lines if len(line) > max_line or "\n" in line]
        if long:
            return "long-line", long[0][:200]
        if any("modelbuild bug" in line for line in err.lines):
            return "bug", err.lines[0][:300]
        return "refused", err.lines[0][:200]
    tasks.recipe_tasks(Loaded(path, path.parents[1], recipe=recipe), {recipe.name: recipe})
    return "loaded", recipe.name


def fuzz(cases: int, seed: int, limit: float = 2.0) -> dict[str, list[tuple[int, str]]]:
    """Run `cases` seeded cases in a temporary project; outcome -> [(case, detail)]."""
    rng = random.Random(seed)
    sources = [path.read_text() for path in SOURCES]
    outcomes: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    slowest: list[tuple[float, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="fuzz-recipes-") as folder:
        root = Path(folder)
        (root / "recipes").mkdir()
        shutil.copytree(REPO / "samples", root / "samples")
        path = root / "recipes" / "case.yaml"
        for case in range(cases):
            path.write_bytes(mutate(rng.choice(sources), rng))
            started = time.perf_counter()
            outcome, detail = run_case(path, limit)
            outcomes[outcome].append((case, detail))
            slowest[:] = sorted(slowest + [(time.perf_counter() - started, case, outcome)], reverse=True)[:3]
    outcomes["slowest"] = [(case, f"{seconds:.2f} s ({outcome})") for seconds, case, outcome in slowest]
    return outcomes


PROBLEMS = ("traceback", "hang", "long-line", "bug")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=2.0, help="seconds a case may take")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    outcomes = fuzz(args.cases, args.seed, args.limit)
    elapsed = time.perf_counter() - started
    print(f"{args.cases} cases (seed {args.seed}) in {elapsed:.1f} s ({1000 * elapsed / args.cases:.1f} ms each)")
    for outcome in ("loaded", "refused", *PROBLEMS):
        print(f"  {outcome:<10} {len(outcomes.get(outcome, []))}")
    for outcome in (*PROBLEMS, "slowest"):
        for case, detail in outcomes.get(outcome, [])[:5]:
            print(f"  {outcome} in case {case}: {detail}")
    return 1 if any(outcomes.get(outcome) for outcome in PROBLEMS) else 0


if __name__ == "__main__":
    sys.exit(main())
