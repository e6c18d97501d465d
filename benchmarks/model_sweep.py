"""Model-coverage sweep: build every recipe in benchmarks/sweep/recipes through three routes, write a table.

    python benchmarks/model_sweep.py                       # all models, all routes -> docs/model-coverage.md
    python benchmarks/model_sweep.py --models tv-resnet18 hf-bert --routes program --output -

Each model is built in its own project folder (its recipe, the shipped samples, dodo.py) with
`doit build:<name>`, exactly as a user would, and judged from what the build leaves: the stage
records (.records/*.json) and the validation report. Routes are the recipe's Core ML variants:
  nn            onnx -> neuralnetwork (torch.onnx.export, onnx2coreml)
  program       torch -> mlprogram, float32 (jit.trace, coremltools)
  program_fp16  torch -> mlprogram, float16
A route passes when its artifact was built and every comparison with PyTorch passed against a
reference that is not flat; it fails (conversion or validation) with the first line of the error.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "benchmarks" / "sweep" / "recipes"
ROUTES = {"nn": "onnx -> neuralnetwork", "program": "torch -> mlprogram", "program_fp16": "torch -> mlprogram fp16"}
TOOLS = ("torch", "torchvision", "timm", "transformers", "onnx", "onnxruntime", "coremltools", "onnx2coreml")


@dataclass
class RouteResult:
    """One model through one route."""

    status: str  # "pass", "fail" (conversion or validation), "not run"
    detail: str = ""
    seconds: float | None = None

    def cell(self) -> str:
        mark = {"pass": "✓", "fail": "✗", "not run": "–"}[self.status]
        timing = f" {self.seconds:.0f} s" if self.seconds is not None else ""
        return f"{mark}{timing}" + (f" {self.detail}" if self.detail else "")


def build(recipe_file: Path, routes: list[str], workdir: Path, timeout: float) -> tuple[dict[str, RouteResult], float]:
    """`doit build:<name>` of one recipe (only the given routes) in a fresh project; the result per route."""
    recipe = yaml.safe_load(recipe_file.read_text())
    recipe["coreml"] = {name: spec for name, spec in recipe["coreml"].items() if name in routes}
    root = workdir / recipe["name"]
    shutil.rmtree(root, ignore_errors=True)
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / recipe_file.name).write_text(yaml.safe_dump(recipe, sort_keys=False))
    (root / "samples").symlink_to(REPO / "samples")
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    started = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, "-m", "doit", f"build:{recipe['name']}"], cwd=root,
                             capture_output=True, text=True, timeout=timeout)
        output = run.stdout + run.stderr
    except subprocess.TimeoutExpired:
        output = f"timed out after {timeout:.0f} s"
    (root / "build.log").write_text(output)
    return judge(root / "artifacts" / recipe["name"], list(recipe["coreml"]), output), time.perf_counter() - started


def judge(artifacts: Path, routes: list[str], output: str) -> dict[str, RouteResult]:
    """Each route's result from the stage records and the validation report."""
    records = {path.stem: json.loads(path.read_text()) for path in (artifacts / ".records").glob("*.json")}
    report_file = artifacts / "report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else None
    results = {}
    for route in routes:
        record = records.get(f"coreml.{route}")
        if record is None:
            results[route] = RouteResult("not run", _first_line(_last_error(output)))
            continue
        seconds = record.get("seconds")
        if route == "nn" and "onnx" in records:
            seconds = (seconds or 0) + (records["onnx"].get("seconds") or 0)
        if record["outcome"] != "built":
            results[route] = RouteResult("fail", "conversion: " + _first_line(record.get("error", "")), seconds)
        elif report is None:
            results[route] = RouteResult("fail", "validation did not run: " + _first_line(_last_error(output)),
                                         seconds)
        else:
            results[route] = _validated(report, route, seconds)
    return results


def _validated(report: dict, route: str, seconds: float | None) -> RouteResult:
    flat = report.get("flat_outputs") or {}
    if flat:
        name, why = next(iter(flat.items()))
        return RouteResult("fail", f"flat reference: {name} {why}", seconds)
    mine = [c for c in report["comparisons"] if c["artifact"] == route]
    failed = [c for c in mine if not c["passed"]]
    if not mine:
        return RouteResult("fail", "validation: no comparison", seconds)
    if not failed:
        worst = max((c["figures"].get("max_rel", 0) for c in mine), default=0)
        psnr = min((c["figures"].get("psnr", float("inf")) for c in mine), default=float("inf"))
        return RouteResult("pass", f"(max rel {worst:.1e}, PSNR >= {psnr:.0f} dB)", seconds)
    first = failed[0]
    if first.get("error"):
        return RouteResult("fail", "validation: " + _first_line(first["error"]), seconds)
    check = next(c for c in first["checks"] if not c["passed"])
    sign = "<=" if check["kind"] == "max" else ">="
    return RouteResult("fail", f"validation: {check['figure']} {check['value']:.3g}, needs {sign} {check['limit']:.3g}",
                       seconds)


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "FAILED" in line or "timed out" in line]
    return (errors or lines or ["no output"])[-1]


def _first_line(text: str, limit: int = 160) -> str:
    line = (text.strip().splitlines() or [""])[0].replace("|", "/")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def markdown(results: dict[str, dict[str, RouteResult]], routes: list[str], descriptions: dict[str, str],
             seconds: float) -> str:
    """docs/model-coverage.md: the summary figures, then one row per model and a column per route."""
    total = len(results)
    any_route = sum(any(r.status == "pass" for r in row.values()) for row in results.values())
    both = sum(row.get("nn", RouteResult("not run")).status == "pass"
               and row.get("program", RouteResult("not run")).status == "pass" for row in results.values())
    versions = ", ".join(f"{tool} {_version(tool)}" for tool in TOOLS)
    lines = [
        "# Model coverage", "",
        f"Generated by `python benchmarks/model_sweep.py` on {time.strftime('%Y-%m-%d')} "
        f"({seconds / 60:.0f} min on this machine). {versions}.", "",
        "Every model is built from its recipe in `benchmarks/sweep/recipes/` with `doit build:<name>` in a fresh "
        "project: random initialisation with `torch::calibrate` (no download), no hand-written wrapper. A route "
        "passes when its artifact was built and every validation comparison with PyTorch passed, against a "
        "reference that is not flat (figures: worst max rel, lowest PSNR).", "",
        f"- Models building and validating through at least one route: {any_route}/{total} "
        f"({100 * any_route / max(total, 1):.0f} %)",
    ]
    if "nn" in routes and "program" in routes:
        lines.append(f"- Through both onnx -> neuralnetwork and torch -> mlprogram: {both}/{total} "
                     f"({100 * both / max(total, 1):.0f} %)")
    for route in routes:
        passed = sum(row.get(route, RouteResult("not run")).status == "pass" for row in results.values())
        lines.append(f"- {ROUTES[route]}: {passed}/{total}")
    lines += ["", "| model | " + " | ".join(ROUTES[r] for r in routes) + " |",
              "|---|" + "---|" * len(routes)]
    for name, row in results.items():
        cells = [row.get(route, RouteResult("not run")).cell() for route in routes]
        lines.append(f"| {name} ({descriptions[name]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _version(tool: str) -> str:
    try:
        return importlib.metadata.version(tool)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="recipe names (default: every recipe in benchmarks/sweep/recipes)")
    parser.add_argument("--routes", nargs="*", default=list(ROUTES), choices=list(ROUTES))
    parser.add_argument("--output", default=str(REPO / "docs" / "model-coverage.md"), help="Markdown file, or -")
    parser.add_argument("--workdir", type=Path, help="where the project folders go (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per model")
    args = parser.parse_args(argv)
    files = sorted(RECIPES.glob("*.yaml"))
    if args.models:
        known = {f.stem: f for f in files}
        unknown = [m for m in args.models if m not in known]
        if unknown:
            parser.error(f"no recipe named {', '.join(unknown)} in {RECIPES}")
        files = [known[m] for m in args.models]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="model-sweep-"))
    results, descriptions, started = {}, {}, time.perf_counter()
    for file in files:
        descriptions[file.stem] = yaml.safe_load(file.read_text()).get("description", "")
        results[file.stem], seconds = build(file, args.routes, workdir, args.timeout)
        print(f"{file.stem:<34} {seconds:6.0f} s  " + "  ".join(f"{r}: {results[file.stem][r].cell()}"
                                                               for r in args.routes), flush=True)
    text = markdown(results, args.routes, descriptions, time.perf_counter() - started)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output} (projects in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
