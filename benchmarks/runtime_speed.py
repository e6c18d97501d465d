"""Latency and memory of the Core ML reference runtime against eager PyTorch.

    .venv/bin/python benchmarks/runtime_speed.py [--repeats N] [--only resnet50|ffdnet]

Converts torchvision ResNet50 (224x224) and FFDNet (colour, 512x512, official
architecture with random weights) to NeuralNetwork .mlmodel with fp32 and fp16
weights (and to ML Program when modelbuild.runtime.mil is importable), then prints,
per variant, the median latency of Model.predict next to torch eager (timed alternately,
so a busy machine slows both alike), their ratio,
the peak Python heap during one predict (tracemalloc: numpy buffers, not torch's)
and the process peak RSS at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelbuild.quiet import coremltools  # noqa: E402
from modelbuild.runtime import load  # noqa: E402
from modelbuild.zoo.ffdnet import FFDNet  # noqa: E402


def interleaved_medians(first: Callable[[], Any], second: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median seconds of two callables timed alternately, so machine load hits both alike."""
    first(), second()  # warm-up: weight decoding, allocator
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def peak_heap_mb(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def convert(ct: Any, net: torch.nn.Module, example: tuple, names: list[str], target: str, precision: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, example)
        inputs = [ct.TensorType(name=n, shape=t.shape) for n, t in zip(names, example)]
        if target == "neuralnetwork":
            model = ct.convert(traced, inputs=inputs, convert_to="neuralnetwork",
                               minimum_deployment_target=ct.target.iOS13)
            if precision == "fp16":
                from coremltools.models.neural_network.quantization_utils import quantize_weights

                model = quantize_weights(model, nbits=16)
            return model
        compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
        return ct.convert(traced, inputs=inputs, convert_to="mlprogram", compute_precision=compute,
                          minimum_deployment_target=ct.target.iOS16)


def cases(only: str | None) -> list[tuple[str, torch.nn.Module, tuple, list[str]]]:
    torch.manual_seed(0)
    found = []
    if only in (None, "resnet50"):
        import torchvision

        found.append(("ResNet50 224x224", torchvision.models.resnet50(weights=None).eval(),
                      (torch.rand(1, 3, 224, 224),), ["x"]))
    if only in (None, "ffdnet"):
        found.append(("FFDNet 512x512", FFDNet(3).eval(), (torch.rand(1, 3, 512, 512), torch.tensor([0.1])),
                      ["x", "sigma"]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["resnet50", "ffdnet"], default=None)
    args = parser.parse_args(argv)
    ct = coremltools()
    variants = [("neuralnetwork", "fp32"), ("neuralnetwork", "fp16"), ("mlprogram", "fp32"), ("mlprogram", "fp16")]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats} (median)")
    print(f"{'model':18} {'variant':22} {'runtime ms':>11} {'torch ms':>9} {'ratio':>6} {'heap MB':>8}  max|diff|")
    with tempfile.TemporaryDirectory() as tmp:
        for title, net, example, names in cases(args.only):
            with torch.no_grad():
                expected = net(*example).numpy()

            def eager() -> Any:
                with torch.no_grad():
                    return net(*example)
            feeds = {n: t.numpy() for n, t in zip(names, example)}
            for target, precision in variants:
                try:
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        mlmodel = convert(ct, net, example, names, target, precision)
                    suffix = "mlmodel" if target == "neuralnetwork" else "mlpackage"
                    path = Path(tmp) / f"{title.split()[0]}_{target}_{precision}.{suffix}"
                    mlmodel.save(str(path))
                    model = load(path, backend="reference")
                    run = lambda: model.predict(feeds)  # noqa: E731
                    runtime_s, torch_s = interleaved_medians(run, eager, args.repeats)
                    runtime_ms, torch_ms = 1000 * runtime_s, 1000 * torch_s
                    heap = peak_heap_mb(run)
                    (out,) = [v for v in run().values()]
                    diff = float(np.abs(np.asarray(out, dtype=np.float64).reshape(expected.shape) - expected).max())
                    print(f"{title:18} {target + ' ' + precision:22} {runtime_ms:11.1f} {torch_ms:9.1f} "
                          f"{runtime_ms / torch_ms:6.2f} {heap:8.1f}  {diff:.2e}", flush=True)
                except Exception as err:  # a benchmark reports every variant, even a failing one
                    print(f"{title:18} {target + ' ' + precision:22} FAILED: {type(err).__name__}: {err}"[:300], flush=True)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
