"""What modelbuild costs on top of the work itself: a build against a plain script, and the no-op build.

Usage: python benchmarks/overhead.py [--pairs N] [--noop-runs N] [--skip-build] [--skip-noop]

1. FFDNet's ONNX file and both Core ML files (`doit onnx:ffdnet coreml:ffdnet.multiarray
   coreml:ffdnet.image`, no validation) against a plain script that makes the same export and the
   same two onnx2coreml conversions (image input and image output with their scales included). Each
   side runs in a fresh process on a clean folder, alternately, N pairs; medians and their ratio.
   The build also runs checks the plain script does not (listed in the output).
2. The no-op `doit build` (everything up to date) of the 3 shipped recipes, and of 100 recipes shaped
   like recipes/ffdnet.yaml around a small FFDNet (built once for real with `doit -n 2`, ~5 min).

Every run happens in a temporary project; the repository's artifacts/ are not touched.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FFDNET_TASKS = ["onnx:ffdnet", "coreml:ffdnet.multiarray", "coreml:ffdnet.image"]
BUILD_ONLY_CHECKS = ("onnx.checker full check of the ONNX file; onnxruntime run of the ONNX file compared with "
                     "PyTorch; the automatic ONNX repairs and route checks of modelbuild.coreml; deterministic "
                     "re-serialisation of each Core ML file; sha256 of every artifact and its stage record")

PLAIN_SCRIPT = r'''
"""FFDNet -> ONNX -> two Core ML files, the way one would write it by hand."""
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx2coreml
import torch
import coremltools as ct
from coremltools.converters.mil import Builder as mb

from modelbuild.zoo.ffdnet import FFDNet

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
model = FFDNet(channels=3).eval()
image, sigma = torch.rand(1, 3, 512, 512), torch.full((1,), 0.09803921568627451)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.onnx.export(model, (image, sigma), str(out / "FFDNet.onnx"), input_names=["my_input", "my_sigma"],
                      output_names=["my_output"], opset_version=17, do_constant_folding=True, dynamo=False)


def convert(image_io):
    program = onnx2coreml.Converter().to_mil(onnx.load(str(out / "FFDNet.onnx")), target=ct.target.iOS13)
    func = program.functions["main"]
    if image_io:  # pixel = 255 * output
        output = func.outputs[0]
        output.set_name("my_output_before_deprocessing")
        with func:
            scaled = mb.mul(x=output, y=np.float32(255.0), name="my_output_deprocess_scale")
        scaled.set_name("my_output")
        func.set_outputs([scaled])
        inputs = [ct.ImageType(name="my_input", shape=(1, 3, 512, 512), scale=1 / 255, color_layout=ct.colorlayout.RGB),
                  ct.TensorType(name="my_sigma", shape=(1,), dtype=np.float32)]
        outputs = [ct.ImageType(name="my_output", color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name="my_input", shape=(1, 3, 512, 512), dtype=np.float32),
                  ct.TensorType(name="my_sigma", shape=(1,), dtype=np.float32)]
        outputs = [ct.TensorType(name="my_output", dtype=np.float32)]
    func.set_output_types(outputs)
    mlmodel = ct.convert(program, convert_to="neuralnetwork", minimum_deployment_target=ct.target.iOS13,
                         inputs=inputs)
    mlmodel.short_description = "FFDNet colour denoiser (Tassano, Delon, Veit; IPOL 2019)"
    mlmodel.save(str(out / ("FFDNet_image.mlmodel" if image_io else "FFDNet.mlmodel")))


convert(image_io=False)
convert(image_io=True)
'''


def make_project(folder: Path, recipes: list[str]) -> Path:
    """A project folder with the given shipped recipes, the samples and a dodo.py."""
    (folder / "recipes").mkdir(parents=True)
    for name in recipes:
        shutil.copy(ROOT / "recipes" / f"{name}.yaml", folder / "recipes")
    shutil.copytree(ROOT / "samples", folder / "samples")
    shutil.copy(ROOT / "dodo.py", folder)
    return folder


PYCACHE = Path(tempfile.gettempdir()) / "modelbuild-overhead-pycache"


def environment() -> dict[str, str]:
    """This checkout first on the path. Where PYTHONDONTWRITEBYTECODE is set, bytecode goes to a cache folder
    instead: an installed package has its .pyc files, and recompiling every module would be timed otherwise."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def warm_up() -> None:
    """Import what both sides import once, untimed (fills the bytecode cache, warms the file system cache)."""
    subprocess.run([sys.executable, "-c", "import modelbuild.tasks, modelbuild.stages.onnx_stage, "
                    "modelbuild.stages.coreml_stage, modelbuild.coreml, modelbuild.validation, coremltools, "
                    "onnx2coreml, onnxruntime, torch, doit.doit_cmd"], env=environment(), capture_output=True,
                   check=True)


def doit(project: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doit", *targets], cwd=project, env=environment(),
                          capture_output=True, text=True, check=True)


def timed(run) -> tuple[float, float]:
    """Wall time and CPU time (user + system, of the child processes) of `run()`."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    run()
    return time.perf_counter() - started, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def build_against_plain(pairs: int) -> None:
    """Alternate a fresh modelbuild build and a fresh plain script, `pairs` times; print medians and ratio."""
    built, plain = [], []
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        project = make_project(Path(tmp) / "project", ["ffdnet"])
        script = Path(tmp) / "plain.py"
        script.write_text(PLAIN_SCRIPT)
        for pair in range(pairs):
            for path in (project / "artifacts", Path(tmp) / "plain", *project.glob(".doit.db*")):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            built.append(timed(lambda: doit(project, *FFDNET_TASKS)))
            plain.append(timed(lambda: subprocess.run([sys.executable, str(script), str(Path(tmp) / "plain")],
                                                      env=environment(), capture_output=True, check=True)))
            print(f"  pair {pair + 1}: modelbuild {built[-1][0]:.2f} s (cpu {built[-1][1]:.2f} s), "
                  f"plain script {plain[-1][0]:.2f} s (cpu {plain[-1][1]:.2f} s)", flush=True)
        made = sorted(p.name for p in (project / "artifacts" / "ffdnet").iterdir() if p.suffix in (".onnx", ".mlmodel"))
        by_hand = sorted(p.name for p in (Path(tmp) / "plain").iterdir())
        if made != by_hand:
            raise SystemExit(f"the two sides made different files: {made} vs {by_hand}")
    (built_wall, built_cpu), (plain_wall, plain_cpu) = _medians(built), _medians(plain)
    print(f"doit {' '.join(FFDNET_TASKS)}: median {built_wall:.2f} s (cpu {built_cpu:.2f} s); plain script: "
          f"median {plain_wall:.2f} s (cpu {plain_cpu:.2f} s); ratio {built_wall / plain_wall:.2f} wall, "
          f"{built_cpu / plain_cpu:.2f} cpu over {pairs} pairs (target <= 1.15)")
    print(f"  (both make {', '.join(made)}; the build also runs: {BUILD_ONLY_CHECKS})")


def noop(project: Path, runs: int) -> list[tuple[float, float]]:
    """Wall and CPU times of `runs` no-op `doit build` runs (fails if a task ran)."""
    times = []
    for _ in range(runs):
        results = []
        times.append(timed(lambda: results.append(doit(project, "build"))))
        ran = [line for line in results[0].stdout.splitlines() if line.startswith(".")]
        if ran:
            raise SystemExit(f"not a no-op build, these tasks ran: {ran}")
    return times


def _noop_line(what: str, times: list[tuple[float, float]], target: float) -> str:
    wall, cpu = _medians(times)
    return (f"no-op doit build, {what}: median {wall:.3f} s (cpu {cpu:.3f} s; wall min {min(t[0] for t in times):.3f}, "
            f"max {max(t[0] for t in times):.3f}, {len(times)} runs; target <= {target} s)")


def small_ffdnet_recipes(folder: Path, count: int) -> Path:
    """A project of `count` recipes shaped like ffdnet.yaml (the same sections, variants and validation; each
    its own name) around a small FFDNet (16 features, 3 layers, 32x32 inputs), built once for real."""
    import yaml

    make_project(folder, [])
    shipped = yaml.safe_load((ROOT / "recipes" / "ffdnet.yaml").read_text())
    for index in range(count):
        recipe = {**shipped, "name": f"small_{index:03d}",
                  "model": {**shipped["model"], "args": {"channels": 3, "features": 16, "layers": 3}},
                  "inputs": {**shipped["inputs"], "my_input": {**shipped["inputs"]["my_input"],
                                                               "shape": [1, 3, 32, 32]}},
                  "validate": {k: v for k, v in shipped["validate"].items() if k != "tolerances"}}
        (folder / "recipes" / f"small_{index:03d}.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    started = time.perf_counter()
    doit(folder, "-n", "2", "build")
    print(f"  built {count} recipes once (doit -n 2 build: {time.perf_counter() - started:.0f} s)", flush=True)
    return folder


def noop_builds(runs: int, built: Path | None, hundred: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="overhead-noop-") as tmp:
        if built is None:
            built = make_project(Path(tmp) / "shipped", ["ffdnet", "ffdnet_flexible", "resnet50"])
            print("  building the 3 shipped recipes once (a few minutes) ...", flush=True)
            doit(built, "build")
        noop(built, 1)
        print(_noop_line("3 shipped recipes", noop(built, runs), 0.4), flush=True)
        if hundred is None or not (hundred / "recipes").is_dir():
            hundred = small_ffdnet_recipes(hundred or Path(tmp) / "hundred", 100)
        noop(hundred, 1)
        print(_noop_line("100 recipes shaped like ffdnet", noop(hundred, runs), 1.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--noop-runs", type=int, default=5)
    parser.add_argument("--skip-build", action="store_true", help="only the no-op builds")
    parser.add_argument("--skip-noop", action="store_true", help="only the build against the plain script")
    parser.add_argument("--built", type=Path, help="a project where the 3 shipped recipes are built (no-op part; "
                                                    "else they are built once in a temporary folder)")
    parser.add_argument("--hundred", type=Path, help="where the 100 recipes are (or are to be built and kept; else "
                                                     "in a temporary folder)")
    args = parser.parse_args()
    warm_up()
    if not args.skip_build:
        build_against_plain(args.pairs)
    if not args.skip_noop:
        noop_builds(args.noop_runs, args.built, args.hundred)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
