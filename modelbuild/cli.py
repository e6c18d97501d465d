"""The `modelbuild` command line: check, schema, inspect, predict."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
    from modelbuild.torch_model import ModelBuildError, import_factory, import_object

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
    from modelbuild.inspection import InspectError, describe_file

    try:
        print(describe_file(Path(args.path)))
    except InspectError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def _predict(args: argparse.Namespace) -> int:
    from modelbuild.runtime.predict_cli import PredictCliError, predict_command

    try:
        print(predict_command(Path(args.path), args.input, args.output, backend=args.backend))
    except PredictCliError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `modelbuild`, one sub-command per action."""
    parser = argparse.ArgumentParser(prog="modelbuild", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate recipe files and report every problem")
    check.add_argument("recipes", nargs="+", metavar="RECIPE")
    check.add_argument("--fast", action="store_true", help="only the schema and file checks (no imports)")
    check.set_defaults(run=_check)

    schema = sub.add_parser("schema", help="print the recipe JSON Schema (for editors)")
    schema.add_argument("--markdown", action="store_true", help="print the recipe reference as Markdown instead")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `modelbuild` and `python -m modelbuild`."""
    args = build_parser().parse_args(argv)
    return args.run(args)
