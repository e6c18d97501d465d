"""Bad inputs to `modelbuild inspect` and `modelbuild predict`: one line each, exit code 2, never a traceback."""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelbuild.runtime import blob_problems


@pytest.fixture(scope="module")
def files(tmp_path_factory, mlpackage_model):
    """A small ML Program package, damaged copies of it, and bad input files."""
    folder = tmp_path_factory.mktemp("bad")
    good = folder / "good.mlpackage"
    mlpackage_model.save(str(good))
    weights = Path("Data/com.apple.CoreML/weights/weight.bin")
    for name, damage in {"truncated": lambda b: b[: len(b) // 2], "overwritten": lambda b: b[:64] + b"\0" * 8 + b[72:]}.items():
        shutil.copytree(good, folder / f"{name}.mlpackage")
        path = folder / f"{name}.mlpackage" / weights
        path.write_bytes(damage(path.read_bytes()))
    (folder / "text.png").write_text("not an image")
    (folder / "garbage.mlmodel").write_bytes(b"\x08\x01garbage")
    (folder / "garbage.onnx").write_bytes(b"\xff" * 100)
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object))
    np.save(folder / "ok.npy", np.zeros((1, 3, 8, 8), np.float32))
    (folder / "cut.npy").write_bytes((folder / "ok.npy").read_bytes()[:40])
    (folder / "a_file").write_text("")
    return folder


@pytest.fixture(scope="module")
def mlpackage_model():
    """coremltools' own small program with a weight big enough for weight.bin (64x3x3x3 conv)."""
    from coremltools.converters.mil import Builder as mb

    from modelbuild.quiet import coremltools

    ct = coremltools()

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 8, 8))], opset_version=ct.target.iOS15)
    def program(x):
        weight = np.random.default_rng(0).normal(size=(64, 3, 3, 3)).astype(np.float32)
        return mb.conv(x=x, weight=weight, pad_type="same", name="y")

    return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS15)


def _run(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "modelbuild", *args], cwd=cwd, capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr.strip()


CASES = {
    "missing file": (["inspect", "nope.onnx"], "there is no file or folder at that path"),
    "folder that is no package": (["inspect", "."], "is not supported"),
    "garbage onnx": (["inspect", "garbage.onnx"], "Cannot read garbage.onnx as an ONNX model"),
    "garbage mlmodel": (["inspect", "garbage.mlmodel"], "Cannot read garbage.mlmodel as a Core ML model"),
    "truncated weights": (["inspect", "truncated.mlpackage"], "its weights are damaged: weight.bin at offset"),
    "overwritten weights": (["inspect", "overwritten.mlpackage"], "no blob record there (sentinel"),
    "predict truncated weights": (["predict", "truncated.mlpackage", "-i", "x=ok.npy"], "are damaged: weight.bin"),
    "text as an image": (["predict", "good.mlpackage", "-i", "x=text.png"], "is not an image that can be read"),
    "object npy": (["predict", "good.mlpackage", "-i", "x=objects.npy"], "is not a numeric .npy array"),
    "cut npy": (["predict", "good.mlpackage", "-i", "x=cut.npy"], "is not a numeric .npy array"),
    "-o at a file": (["predict", "good.mlpackage", "-i", "x=ok.npy", "-o", "a_file"], "that is a file"),
    "no NAME=VALUE": (["predict", "good.mlpackage", "-i", "x"], "is not NAME=VALUE"),
    "unknown input": (["predict", "good.mlpackage", "-i", "nope=ok.npy"], "the model has no input 'nope'"),
    "missing input": (["predict", "good.mlpackage"], "missing input(s) 'x'"),
    "wrong shape": (["predict", "good.mlpackage", "-i", "x=3"], "has shape [1], but the model accepts"),
    "garbage model": (["predict", "garbage.mlmodel", "-i", "x=3"], "is not a readable Core ML model"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_line_with_exit_code_2(files, case):
    args, expected = CASES[case]
    code, _, err = _run(*args, cwd=files)
    assert code == 2 and expected in err and "\n" not in err and "Traceback" not in err, err


def test_good_package_has_intact_blobs_and_predicts(files):
    from modelbuild.quiet import coremltools

    spec = coremltools().utils.load_spec(str(files / "good.mlpackage"))
    assert blob_problems(spec, files / "good.mlpackage" / "Data/com.apple.CoreML/weights") == []
    code, out, _ = _run("predict", "good.mlpackage", "-i", "x=ok.npy", cwd=files)
    assert code == 0 and "y: array float32 [1, 64, 8, 8]" in out


def test_a_closed_pipe_ends_quietly(files):
    command = f"{sys.executable} -m modelbuild inspect good.mlpackage | head -c 10"
    result = subprocess.run(["bash", "-c", "set -o pipefail; " + command], cwd=files, capture_output=True, text=True)
    assert result.stderr == "" and len(result.stdout) == 10


def test_blob_record_past_the_end_names_the_sizes(tmp_path):
    from modelbuild.runtime.mil.blobs import _record_problem

    path = tmp_path / "weight.bin"
    path.write_bytes(struct.pack("<II", 1, 2) + b"\0" * 56 + struct.pack("<IIQQ", 0xDEADBEEF, 1, 1000, 128) + b"\0" * 40)
    assert _record_problem(path, 64) == "the blob's 1000 bytes at 128 lie past the end of the file (128 bytes: truncated?)"
    assert _record_problem(path, 4096).startswith("the blob record lies past the end of the file")
