"""Helpers of the model patch tests: a project folder around one recipe, state digests."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from projects import REPO
from torch import nn

from modelbuild.recipe import Recipe, load_recipe

SAMPLES = ["samples/astronaut.png", "samples/chelsea.png", "samples/coffee.png", "samples/rocket.jpg"]
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def project_recipe(root: Path, data: dict[str, Any]) -> tuple[Recipe, Path]:
    """Write recipes/<name>.yaml under `root` (with the repository's sample images) and load it."""
    (root / "recipes").mkdir(parents=True, exist_ok=True)
    if not (root / "samples").exists():
        shutil.copytree(REPO / "samples", root / "samples")
    path = root / "recipes" / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_recipe(path), root


def classifier_recipe(name: str, factory: str, patches: list[dict[str, Any]], **validate: Any) -> dict[str, Any]:
    """An ImageNet classifier recipe (224 x 224, ImageNet normalisation, the four sample images)."""
    return {"name": name, "model": {"factory": factory, "normalize": IMAGENET, "patches": patches},
            "inputs": {"image": {"shape": [1, 3, 224, 224]}}, "outputs": {"logits": {}},
            "validate": {"samples": SAMPLES, **validate}}


def state_digest(model: Any) -> str:
    """sha256 over every state dict entry's name and bytes."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode() + b"\0" + value.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


class PooledNormNet(nn.Module):
    """conv -> BN -> global pool -> BN (one value per channel for a batch of 1), as in DeepLabV3's ASPP pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pooled_bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled_bn(self.pool(self.bn(self.conv(x))))


class BatchNormNet(nn.Module):
    """conv -> BN -> ReLU -> dropout -> conv -> BN (momentum 0.3) -> pool -> linear (weights zeroed when asked)."""

    def __init__(self, zero_head: bool = False, zero_gamma: bool = False, small_head: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(16, momentum=0.3)
        self.head = nn.Linear(16, 5)
        with torch.no_grad():
            if zero_head:
                self.head.weight.zero_()
            if small_head:
                self.head.weight.normal_(0, 0.01)
            if zero_gamma:
                self.bn2.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.bn1(self.conv1(x))))
        return self.head(self.bn2(self.conv2(x)).mean((2, 3)))
