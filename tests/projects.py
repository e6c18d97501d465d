"""Helpers for build tests: a small project folder (recipes/, a tiny FFDNet, its weights)."""
from __future__ import annotations

import re
from pathlib import Path

import torch
import yaml
from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain

from modelbuild import tasks

REPO = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "ffdnet"

TINY_RECIPE = {
    "name": "tiny",
    "description": "a small FFDNet for fast build tests",
    "model": {
        "factory": "modelbuild.zoo.ffdnet:FFDNet",
        "args": {"channels": 1, "features": 4, "layers": 3},
        "weights": {"path": "weights/tiny.pth"},
    },
    "inputs": {"x": {"shape": [1, 1, 16, 16]}, "sigma": {"shape": [1], "example": 0.1}},
    "outputs": {"y": {}},
    "onnx": {"opset": 17},
    "coreml": {
        "viaonnx": {"frontend": "onnx", "format": "neuralnetwork"},
        "viatorch": {"frontend": "torch", "format": "neuralnetwork"},
    },
}


def write_tiny_weights(path: Path, seed: int = 0) -> None:
    """Save the state dict of a seeded tiny FFDNet at `path`."""
    import torch

    from modelbuild.zoo.ffdnet import FFDNet

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(FFDNet(channels=1, features=4, layers=3).state_dict(), path)


def make_tiny_project(tmp_path: Path) -> Path:
    """A project folder with recipes/tiny.yaml and weights/tiny.pth."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "tiny.yaml").write_text(yaml.safe_dump(TINY_RECIPE, sort_keys=False))
    write_tiny_weights(tmp_path / "weights" / "tiny.pth")
    return tmp_path


def edit_recipe(root: Path, edit, name: str = "tiny") -> None:
    """Load recipes/<name>.yaml, apply `edit(data)`, write it back."""
    path = root / "recipes" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


class WithInit(torch.nn.Module):
    """A module whose weights are set by an init method, as in the FFDNet write-up."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)

    def init_weights(self):
        torch.nn.init.constant_(self.linear.weight, 0.5)

    def forward(self, x):
        return self.linear(x)


def doit(root, monkeypatch, *args: str) -> int:
    """Run doit with modelbuild's tasks in `root`, as `doit ARGS` would."""
    monkeypatch.chdir(root)
    tasks.forget_project()
    namespace = {name: getattr(tasks, name) for name in dir(tasks) if name.startswith("task_") or name == "DOIT_CONFIG"}
    return DoitMain(ModuleTaskLoader(namespace)).run(list(args))


def run_doit(root, monkeypatch, *targets: str) -> tuple[int, list[str]]:
    """`doit run TARGETS` in `root`; its exit code and the tasks it executed (not up to date)."""
    report = root / "doit-report.txt"
    code = doit(root, monkeypatch, "run", "--output-file", str(report), *(targets or ["build:tiny"]))
    return code, sorted(re.findall(r"^\.  (\S+)$", report.read_text(), flags=re.M))


class TinyClassifier(torch.nn.Module):
    """A small image classifier (5 classes) for agreement and classifier tests."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
                                            torch.nn.AdaptiveAvgPool2d(1))
        self.head = torch.nn.Linear(16, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


CLASSIFIER_RECIPE = {
    "name": "clf",
    "model": {"factory": "projects:TinyClassifier", "seed": 3,
              "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
    "inputs": {"image": {"shape": [1, 3, 32, 32]}},
    "outputs": {"logits": {}},
    "classifier": {"labels": {"file": "labels.txt"}},
    "coreml": {"nn": {"frontend": "onnx", "format": "neuralnetwork",
                      "image_inputs": {"image": {"scale": 1 / 255}}},
               "program": {"frontend": "torch", "format": "mlprogram",
                           "image_inputs": {"image": {"scale": 1 / 255}}}},
    "validate": {"samples": ["samples/astronaut.png", "samples/chelsea.png", "samples/coffee.png",
                             "samples/rocket.jpg"]},
    "agreement": {"models": {"torch": "torch", "torch->onnx": "onnx", "onnx->coreml": "nn",
                             "torch->mlprogram": "program"}},
}


def make_classifier_project(tmp_path: Path) -> Path:
    """A project with recipes/clf.yaml (a tiny classifier with 5 labels) and the shipped samples."""
    import shutil

    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "clf.yaml").write_text(yaml.safe_dump(CLASSIFIER_RECIPE, sort_keys=False))
    (tmp_path / "labels.txt").write_text("apple\nbanana\ncherry\ndate\nelderberry\n")
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    return tmp_path


def build_shipped_recipe(tmp_path_factory, name: str, edit=None) -> Path:
    """Copy recipes/<name>.yaml and samples/ into a fresh folder, apply `edit(data)` to the copy if given,
    `doit build:<name>` there; its artifact dir."""
    import shutil

    import pytest

    root = tmp_path_factory.mktemp(name)
    shutil.copytree(REPO / "samples", root / "samples")
    (root / "recipes").mkdir()
    shutil.copy(REPO / "recipes" / f"{name}.yaml", root / "recipes")
    if edit is not None:
        edit_recipe(root, edit, name)
    monkeypatch = pytest.MonkeyPatch()
    try:
        code, _ = run_doit(root, monkeypatch, f"build:{name}")
    finally:
        monkeypatch.undo()
    assert code == 0, (root / "doit-report.txt").read_text()
    return root / "artifacts" / name


class ViewFlattenClassifier(torch.nn.Module):
    """Flattens with x.view(x.size(0), -1), the ResNet50 write-up's trigger of a baked reshape."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.AdaptiveAvgPool2d(1))
        self.head = torch.nn.Linear(8, classes)

    def forward(self, x):
        x = self.features(x)
        return self.head(x.view(x.size(0), -1))


class TinyTokenClassifier(torch.nn.Module):
    """Token ids and an attention mask in, 3 class scores out (a transformer's interface, in small).

    Like transformers' `logits_to_keep=0`, forward has a defaulted number the recipe does not declare:
    it must not become an ONNX input."""

    def __init__(self, vocabulary: int = 50):
        super().__init__()
        self.embed = torch.nn.Embedding(vocabulary, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, ids, mask, scale: int = 1):
        hidden = self.embed(ids) * mask.unsqueeze(-1).to(torch.float32) * scale
        return {"logits": self.head(hidden.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)), "hidden": hidden}


TOKEN_RECIPE = {
    "name": "tokens",
    "model": {"factory": "projects:TinyTokenClassifier", "seed": 1},
    "inputs": {"ids": {"shape": [1, 12], "dtype": "int64", "range": [0, 49]},
               "mask": {"shape": [1, 12], "dtype": "int64", "range": [0, 1]}},
    "outputs": {"logits": {}},
    "coreml": {"nn": {"frontend": "onnx", "format": "neuralnetwork"},
               "program": {"frontend": "torch", "format": "mlprogram"},
               "torch_nn": {"frontend": "torch", "format": "neuralnetwork"}},
    "validate": {"random_samples": 3},
}
