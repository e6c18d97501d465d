"""save_mlmodel writes atomically; the artifact digest (modelbuild.hashing) is stable and sees content changes."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from modelbuild.coreml import CoreMLBuildError, save_mlmodel
from modelbuild.hashing import artifact_sha256 as package_digest
from modelbuild import atomic

NN = ("torch", "neuralnetwork", "iOS13")
PROGRAM = ("onnx", "mlprogram", "iOS15")
SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.mark.parametrize("case", [NN, PROGRAM], ids=["mlmodel", "mlpackage"])
def test_two_saves_and_two_conversions_have_one_digest(converted_ffdnet, case, tmp_path):
    frontend, format, target = case
    first, second = tmp_path / f"a{SUFFIX[format]}", tmp_path / f"b{SUFFIX[format]}"
    model = converted_ffdnet(frontend, format, target, "image")
    save_mlmodel(model, first)
    save_mlmodel(model, second)
    assert package_digest(first) == package_digest(second)
    save_mlmodel(converted_ffdnet(frontend, format, target, "image", fresh=True), second)
    assert package_digest(first) == package_digest(second)  # conversion is deterministic
    other = converted_ffdnet(frontend, format, target, "multiarray")
    save_mlmodel(other, second)  # replaces the existing artifact
    assert package_digest(first) != package_digest(second)
    assert _siblings(first) == [second.name]  # no temporaries left


def test_package_digest_covers_paths_and_contents(converted_ffdnet, tmp_path):
    path = tmp_path / "m.mlpackage"
    save_mlmodel(converted_ffdnet(*PROGRAM, "image"), path)
    before = package_digest(path)
    weights = next(path.rglob("weight.bin"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert package_digest(path) != before
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert package_digest(path) == before
    weights.rename(weights.with_name("renamed.bin"))
    assert package_digest(path) != before


@pytest.mark.parametrize("case", [NN, PROGRAM], ids=["mlmodel", "mlpackage"])
def test_failed_save_keeps_the_old_artifact(converted_ffdnet, case, tmp_path, monkeypatch):
    frontend, format, target = case
    path = tmp_path / f"model{SUFFIX[format]}"
    old_model = converted_ffdnet(frontend, format, target, "multiarray")
    save_mlmodel(old_model, path)
    old_digest = package_digest(path)
    new_model = converted_ffdnet(frontend, format, target, "image")
    real_save = type(new_model).save

    def crash_halfway(self, save_path):
        real_save(self, save_path)  # the temporary is complete on disk ...
        written = Path(save_path)
        spec_file = written if written.is_file() else next(written.rglob("model.mlmodel"))
        with open(spec_file, "r+b") as stream:  # ... then half of it is lost, and Ctrl-C
            stream.truncate(spec_file.stat().st_size // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(new_model), "save", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_mlmodel(new_model, path)
    assert package_digest(path) == old_digest
    assert _siblings(path) == []


def test_failed_swap_of_a_package_restores_the_old_one(converted_ffdnet, tmp_path, monkeypatch):
    path = tmp_path / "model.mlpackage"
    save_mlmodel(converted_ffdnet(*PROGRAM, "multiarray"), path)
    old_digest = package_digest(path)
    real_rename = os.rename

    def rename(source, destination):
        if os.fspath(destination) == os.fspath(path) and ".tmp-" in os.fspath(source):
            raise OSError("disk full")
        return real_rename(source, destination)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        save_mlmodel(converted_ffdnet(*PROGRAM, "image"), path)
    assert package_digest(path) == old_digest
    assert _siblings(path) == []


def test_leftovers_of_an_interrupted_save_are_cleaned(converted_ffdnet, tmp_path):
    path = tmp_path / "model.mlpackage"
    (tmp_path / ".model.tmp-deadbeef.mlpackage").mkdir()
    (tmp_path / ".model.mlpackage.old-deadbeef").mkdir()
    save_mlmodel(converted_ffdnet(*PROGRAM, "image"), path)
    assert _siblings(path) == []


def test_wrong_extension_is_refused(converted_ffdnet, tmp_path):
    with pytest.raises(CoreMLBuildError, match=re.escape("Cannot save an ML Program as") + ".*must end in .mlpackage"):
        save_mlmodel(converted_ffdnet(*PROGRAM, "image"), tmp_path / "m.mlmodel")
    with pytest.raises(CoreMLBuildError, match="Cannot save a NeuralNetwork model as.*must end in .mlmodel"):
        save_mlmodel(converted_ffdnet(*NN, "image"), tmp_path / "m.mlpackage")
    assert list(tmp_path.iterdir()) == []


def test_saved_packages_are_byte_identical_and_readable_by_coremltools(converted_ffdnet, tmp_path):
    first, second = tmp_path / "a.mlpackage", tmp_path / "b.mlpackage"
    save_mlmodel(converted_ffdnet(*PROGRAM, "multiarray"), first)
    save_mlmodel(converted_ffdnet(*PROGRAM, "multiarray", fresh=True), second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert Path("Manifest.json") in files
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    from modelbuild.quiet import coremltools

    coremltools()
    from coremltools.libmodelpackage import ModelPackage

    package = ModelPackage(str(first))
    assert Path(package.getRootModel().path()) == first / "Data" / "com.apple.CoreML" / "model.mlmodel"


_BUILD_TWO_ARTIFACTS = """
import sys, torch
from pathlib import Path
from modelbuild.coreml import FeatureSpec, ImageInput, ImageOutput, Metadata, convert, save_mlmodel
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Sigmoid()).eval()
for format, target, suffix in [("neuralnetwork", "iOS13", ".mlmodel"), ("mlprogram", "iOS16", ".mlpackage")]:
    mlmodel = convert(frontend="torch", torch_model=model, format=format, minimum_deployment_target=target,
                      inputs=[FeatureSpec("photo", (1, 3, 8, 8), image=ImageInput(scale=1 / 255))],
                      outputs=[FeatureSpec("result", (1, 3, 8, 8), image=ImageOutput(scale=255.0))],
                      metadata=Metadata(user_defined={k: k.upper() for k in "abcdefgh"}))
    save_mlmodel(mlmodel, Path(sys.argv[1]) / ("model" + suffix))
"""


@pytest.mark.slow
def test_artifacts_are_byte_identical_across_processes(tmp_path):
    import subprocess
    import sys

    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        subprocess.run([sys.executable, "-c", _BUILD_TWO_ARTIFACTS, str(tmp_path / run)], check=True)
    files = sorted(p.relative_to(tmp_path / "first") for p in (tmp_path / "first").rglob("*") if p.is_file())
    assert len(files) == 4  # model.mlmodel + the package's Manifest.json, model.mlmodel, weight.bin
    for relative in files:
        assert (tmp_path / "first" / relative).read_bytes() == (tmp_path / "second" / relative).read_bytes(), relative
