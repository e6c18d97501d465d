"""The `modelbuild` command line: build, check, schema, inspect, predict, cache.

A command imports what only it needs inside its function: the recipe schema (pydantic), doit and the
runtime (numpy) are not loaded by `modelbuild inspect`, `modelbuild cache` or `--help`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from modelbuild.build_lock import NO_WAIT_VARIABLE
from modelbuild.cache import commands
from modelbuild.cache.config import CacheConfigError, parse_size
from modelbuild.cluster import ClusterError, build_on_cluster
from modelbuild.inspection import InspectError, describe_file
from modelbuild.references import ModelBuildError, import_factory, import_object


def _check(args: argparse.Namespace) -> int:
    from modelbuild.recipe import RecipeError, load_recipe

    status = 0
    for path in args.recipes:
        try:
            recipe = load_recipe(path)
        except RecipeError as err:
            print(err, file=sys.stderr)
            status = 1
            continue
        problems = [] if args.fast else _import_problems(recipe)
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
        if problems:
            status = 1
        else:
            print(f"{path}: ok ({recipe.name}: {len(recipe.coreml)} Core ML variant(s))")
    return status


def _import_problems(recipe) -> list[str]:
    """Import what the recipe names (model factory, labels): what a build would fail on first."""
    imports = []
    if recipe.model.factory is not None:
        imports.append(lambda: import_factory(recipe.model.factory))
    if recipe.classifier is not None and recipe.classifier.labels.python:
        imports.append(lambda: import_object(recipe.classifier.labels.python, field="classifier.labels.python"))
    problems = []
    for load in imports:
        try:
            load()
        except ModelBuildError as err:
            problems.append(str(err))
    return problems


def _schema(args: argparse.Namespace) -> int:
    if args.markdown:
        from modelbuild.recipe.reference import reference_markdown

        print(reference_markdown(), end="")
    else:
        from modelbuild.recipe import recipe_json_schema

        print(json.dumps(recipe_json_schema(), indent=2))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    try:
        text = describe_file(Path(args.path))
    except InspectError as err:
        print(err, file=sys.stderr)
        return BAD_INPUT
    print(text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from modelbuild.runtime import PredictCliError, predict_command

    try:
        text = predict_command(Path(args.path), args.input, args.output, backend=args.backend)
    except PredictCliError as err:
        print(err, file=sys.stderr)
        return BAD_INPUT
    print(text)
    return 0


def _build(args: argparse.Namespace) -> int:
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from modelbuild import tasks

    if args.no_wait:
        os.environ[NO_WAIT_VARIABLE] = "1"
    if args.scheduler:
        return _build_on_cluster(args)
    options = ["-n", str(args.processes)] if args.processes else []
    return DoitMain(ModuleTaskLoader(tasks)).run(["run", *options, *(args.targets or ["build"])])


def _build_on_cluster(args: argparse.Namespace) -> int:
    if args.processes:
        print("modelbuild build: --scheduler and -n do not go together (the cluster's workers build in parallel)",
              file=sys.stderr)
        return BAD_INPUT
    try:
        return build_on_cluster(args.scheduler, Path.cwd(), args.targets)
    except ClusterError as err:
        print(f"modelbuild build: {err}", file=sys.stderr)
        return BAD_INPUT


def _cache(args: argparse.Namespace) -> int:
    root = Path.cwd()
    try:
        if args.action == "status":
            return commands.status(root)
        if args.action == "push":
            return commands.push(root)
        if args.action == "pull":
            return commands.pull(root, args.targets)
        max_size = parse_size(args.max_size, "--max-size") if args.max_size is not None else None
        return commands.gc(root, args.max_age_days, max_size, args.dry_run)
    except (commands.CacheCommandError, CacheConfigError) as err:
        print(f"modelbuild cache {args.action}: {err}", file=sys.stderr)
        return BAD_INPUT


def _cache_parser(sub) -> None:
    cache = sub.add_parser("cache", help="the shared build cache: status, push, pull, gc")
    actions = cache.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="configuration, reachability, size, and which local stages the cache holds")
    actions.add_parser("push", help="upload every locally built stage the cache does not hold")
    pull = actions.add_parser("pull", help="restore what the recipes need from the cache, building nothing")
    pull.add_argument("targets", nargs="*", metavar="TARGET", help="doit targets (default: every recipe)")
    gc = actions.add_parser("gc", help="remove entries unused for N days or beyond a size budget")
    gc.add_argument("--max-age-days", type=float, default=None, help="remove entries not used for this many days "
                                                                     "(default: max_age_days of the configuration)")
    gc.add_argument("--max-size", default=None, metavar="SIZE", help="then remove the least recently used entries "
                                                                     "until the rest fit, e.g. 50GB (default: max_size)")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    cache.set_defaults(run=_cache)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `modelbuild`, one sub-command per action."""
    parser = argparse.ArgumentParser(prog="modelbuild", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build the recipes of the project in the current folder (runs doit)")
    build.add_argument("targets", nargs="*", metavar="TARGET", help="doit targets, e.g. build:ffdnet or "
                                                                    "coreml:ffdnet.image (default: every recipe)")
    build.add_argument("--no-wait", action="store_true", help="stop at once (exit code 3) if another build of "
                                                              "this project is running, instead of waiting")
    build.add_argument("-n", "--processes", type=int, default=0, help="run up to N stages in parallel")
    build.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="build each recipe on a worker of this Dask scheduler (tcp://HOST:8786), then restore the "
                            "results from the shared cache; TARGETs are then recipe names")
    build.set_defaults(run=_build)

    check = sub.add_parser("check", help="validate recipe files and report every problem")
    check.add_argument("recipes", nargs="+", metavar="RECIPE")
    check.add_argument("--no-import", "--fast", dest="fast", action="store_true",
                       help="only the schema and file checks: import and run nothing of the recipe's (its factory, "
                            "labels or patch modules)")
    check.set_defaults(run=_check)

    schema = sub.add_parser("schema", help="print the recipe JSON Schema (for editors)")
    schema.add_argument("--markdown", action="store_true",
                        help="print the recipe and surgery references (docs/*-reference.md) as Markdown instead")
    schema.set_defaults(run=_schema)

    inspect = sub.add_parser("inspect", help="describe an .onnx, .mlmodel or .mlpackage file")
    inspect.add_argument("path", metavar="PATH")
    inspect.set_defaults(run=_inspect)

    predict = sub.add_parser("predict", help="run a Core ML file (reference runtime on Linux)")
    predict.add_argument("path", metavar="PATH")
    predict.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                         help="an image file, a .npy file or a number; repeat per input")
    predict.add_argument("--output", "-o", type=Path, default=None, metavar="DIR",
                         help="write image outputs as PNG and arrays as .npy here")
    predict.add_argument("--backend", choices=["auto", "reference", "native"], default="auto")
    predict.set_defaults(run=_predict)
    _cache_parser(sub)
    return parser


BAD_INPUT = 2  # exit code for a problem with what the command was given (as argparse uses for bad options)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `modelbuild` and `python -m modelbuild`."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # `modelbuild inspect X | head`: the reader has gone, so has the point of writing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
