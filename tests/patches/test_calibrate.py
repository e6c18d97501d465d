"""torch::calibrate: statistics against a hand computation, redrawn weights, torchvision logits, determinism."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from projects import REPO

from modelbuild.diagnostics import BuildWarning
from modelbuild.patches import PatchError
from modelbuild.torch_model import ModelBuildError, build_model
from modelbuild.samples import make_samples
from patches.helpers import IMAGENET, SAMPLES, classifier_recipe, project_recipe, state_digest

CALIBRATE = {"step": "torch::calibrate"}


def small_recipe(tmp_path, patches=(CALIBRATE,), seed=0, **args):
    return project_recipe(tmp_path, {
        "name": "bn", "model": {"factory": "patches.helpers:BatchNormNet", "args": args, "seed": seed,
                                "normalize": IMAGENET, "patches": list(patches)},
        "inputs": {"image": {"shape": [1, 3, 16, 16]}}, "outputs": {"logits": {}},
        "validate": {"samples": SAMPLES}})


def build(recipe, root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BuildWarning)
        return build_model(recipe, root)


def logits(model, recipe, root) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(s.feeds["image"])).numpy() for s in make_samples(recipe, root)])


def test_statistics_are_the_average_of_every_samples_batch_statistics(tmp_path):
    recipe, root = small_recipe(tmp_path)
    model = build(recipe, root).model  # inside the Normalized wrapper
    torch.manual_seed(0)
    reference = type(model)().eval()  # same seed, same construction: the weights calibrate started from
    mean, std = (torch.tensor(IMAGENET[k]).reshape(1, 3, 1, 1) for k in ("mean", "std"))
    per_sample = {"bn1": [], "bn2": []}
    for sample in make_samples(recipe, root):
        x = reference.conv1((torch.from_numpy(sample.feeds["image"]) - mean) / std)
        per_sample["bn1"].append((x.mean((0, 2, 3)), x.var((0, 2, 3))))
        x = torch.relu(F.batch_norm(x, None, None, reference.bn1.weight, reference.bn1.bias, True))
        x = reference.conv2(x)  # dropout is off while calibrating
        per_sample["bn2"].append((x.mean((0, 2, 3)), x.var((0, 2, 3))))
    for name, stats in per_sample.items():
        norm = getattr(model, name)
        np.testing.assert_allclose(norm.running_mean, torch.stack([m for m, _ in stats]).mean(0).detach(), rtol=1e-5)
        np.testing.assert_allclose(norm.running_var, torch.stack([v for _, v in stats]).mean(0).detach(), rtol=1e-5)
        assert int(norm.num_batches_tracked) == len(SAMPLES)
    assert (model.bn1.momentum, model.bn2.momentum) == (0.1, 0.3)
    assert not any(module.training for module in model.modules())
    assert torch.equal(model.head.weight, reference.head.weight)  # a default-initialised head is kept


@torch.no_grad()
def test_zero_and_too_small_weights_are_redrawn_from_the_model_seed(tmp_path):
    recipe, root = small_recipe(tmp_path, zero_head=True, zero_gamma=True)
    model = build(recipe, root).model
    assert abs(float(model.head.weight.std()) * 4 - 1) < 0.3  # N(0, 1/fan_in), fan_in 16
    assert abs(float(model.bn2.weight.mean()) - 1) < 0.1 and 0.05 < float(model.bn2.weight.std()) < 0.2
    assert torch.equal(build(recipe, root).model.head.weight, model.head.weight)
    other_seed, _ = small_recipe(tmp_path / "other", seed=1, zero_head=True, zero_gamma=True)
    assert not torch.equal(build(other_seed, root).model.head.weight, model.head.weight)

    small, _ = small_recipe(tmp_path / "small", small_head=True)
    assert abs(float(build(small, root).model.head.weight.std()) * 4 - 1) < 0.3
    kept, _ = small_recipe(tmp_path / "kept", patches=[{**CALIBRATE, "redraw_below": 0.01}], small_head=True)
    assert float(build(kept, root).model.head.weight.std()) < 0.02
    untouched, _ = small_recipe(tmp_path / "untouched", patches=[{**CALIBRATE, "redraw": False}], zero_head=True)
    assert not build(untouched, root).model.head.weight.any()


def test_a_model_with_nothing_to_calibrate_says_so(tmp_path):
    recipe, root = project_recipe(tmp_path, {
        "name": "plain", "model": {"factory": "projects:TinyClassifier", "patches": [CALIBRATE]},
        "inputs": {"image": {"shape": [1, 3, 32, 32]}}, "outputs": {"logits": {}}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_model(recipe, root)
    assert [str(w.message) for w in caught if issubclass(w.category, BuildWarning)] == [
        "plain: no model.weights in the recipe; building with a random initialisation (seed 0)",
        "plain: torch::calibrate changed nothing: the model has no norm layer with running statistics and no "
        "all-zero or too-small weight"]


def test_a_norm_layer_that_sees_one_value_per_channel_keeps_its_defaults(tmp_path):
    recipe, root = project_recipe(tmp_path, {
        "name": "pooled", "model": {"factory": "patches.helpers:PooledNormNet", "patches": [CALIBRATE]},
        "inputs": {"image": {"shape": [1, 3, 16, 16]}}, "outputs": {"y": {}}, "validate": {"samples": SAMPLES}})
    model = build(recipe, root)
    assert not model.training and not model.pooled_bn.training
    assert torch.equal(model.pooled_bn.running_mean, torch.zeros(4))
    assert torch.equal(model.pooled_bn.running_var, torch.ones(4))
    expected = torch.cat([model.conv(torch.from_numpy(s.feeds["image"])) for s in make_samples(recipe, root)])
    assert torch.allclose(model.bn.running_mean, expected.mean((0, 2, 3)), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0"])
def test_torchvision_logits_get_a_spread_of_order_one(tmp_path, name):
    plain, root = project_recipe(tmp_path, classifier_recipe(f"{name}-plain", f"torchvision.models:{name}", []))
    recipe, _ = project_recipe(tmp_path, classifier_recipe(name, f"torchvision.models:{name}", [CALIBRATE]))
    before = logits(build(plain, root), plain, root)
    after = logits(build(recipe, root), recipe, root)
    assert np.abs(before).max() < 1e-8  # torchvision's random init: nothing worth comparing
    assert 0.3 < after.std() < 10
    assert after.std(axis=0).mean() > 0.3  # samples differ from each other, class by class
    assert len(set(after.argmax(1))) >= 3


@pytest.mark.slow
def test_two_processes_with_different_thread_counts_build_identical_weights(tmp_path):
    recipe, root = project_recipe(tmp_path, classifier_recipe("m", "torchvision.models:mobilenet_v3_small",
                                                              [CALIBRATE]))
    code = ("import sys, warnings; warnings.simplefilter('ignore'); from pathlib import Path; "
            "from modelbuild.recipe import load_recipe; from modelbuild.torch_model import build_model; "
            "from patches.helpers import state_digest; root = Path(sys.argv[1]); "
            "print(state_digest(build_model(load_recipe(root / 'recipes' / 'm.yaml'), root)))")
    digests = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads,
               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
        digests.add(subprocess.run([sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True,
                                   check=True).stdout.strip())
    assert digests == {state_digest(build(recipe, root))}
