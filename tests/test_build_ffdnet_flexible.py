"""recipes/ffdnet_flexible.yaml built for real: every variant validates at every test size and refuses others.

The FFDNet write-up's crash: a Core ML FFDNet made flexible with flexible_shape_utils crashed on any
size but 512x512. Here the same request (a denoiser for many sizes) gives models that run at sizes
they were not traced at, odd ones included, and agree with PyTorch there.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from projects import REPO, build_shipped_recipe

from modelbuild import runtime
from modelbuild.recipe import load_recipe
from modelbuild.torch_model import build_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_shipped_recipe(tmp_path_factory, "ffdnet_flexible").parents[1]


def test_every_variant_validates_at_every_test_size(built):
    report = json.loads((built / "artifacts" / "ffdnet_flexible" / "report.json").read_text())
    assert report["passed"]
    sizes = {c["sample"].split("@ ")[1].split(" (")[0] for c in report["comparisons"] if "@" in c["sample"]}
    assert sizes == {"min 32x32", "default 128x128", "max 256x256", "other 81x81", "extra 1 75x101"}
    for variant in ("multiarray", "image", "program", "image_program"):
        mine = [c for c in report["comparisons"] if c["artifact"] == variant]
        assert len(mine) == 6 and all(c["passed"] for c in mine)
        [refusal] = [c for c in mine if c["output"] == "(refused)"]
        assert refusal["figures"]["refused"] == 1.0 and "ShapeMismatchError" in refusal["note"]


@pytest.mark.parametrize("file", ["FFDNet_flexible_image.mlmodel", "FFDNet_flexible_image.mlpackage"])
def test_the_writeups_crash_case_now_runs(built, file):
    recipe = load_recipe(built / "recipes" / "ffdnet_flexible.yaml")
    model = build_model(recipe, built)
    picture = Image.open(REPO / "samples" / "chelsea.png").convert("RGB").crop((100, 50, 251, 250))  # 151x200
    sigma = np.array([25 / 255], np.float32)
    outputs = runtime.load(built / "artifacts" / "ffdnet_flexible" / file).predict(
        {"my_input": picture, "my_sigma": sigma})
    got = outputs["my_output"]
    got = np.asarray(got, np.float32).transpose(2, 0, 1)[None] / 255 if isinstance(got, Image.Image) else got
    x = torch.from_numpy(np.asarray(picture, np.float32).transpose(2, 0, 1)[None] / 255)
    with torch.no_grad():
        expected = model(x, torch.from_numpy(sigma)).numpy()
    assert got.shape == expected.shape == (1, 3, 200, 151)
    assert np.abs(got - expected).max() <= 1 / 255 + 1e-6  # at most one pixel level (8-bit output)
