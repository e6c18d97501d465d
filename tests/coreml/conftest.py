"""Fixtures of the Core ML stage tests: tiny seeded models, their ONNX exports, converted models.

Conversions are cached per session (each takes ~0.3 s) so that the spec tests
and the numeric tests share them.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

from modelbuild.coreml import FeatureSpec, ImageInput, ImageOutput, Metadata, convert
from modelbuild.zoo.ffdnet import FFDNet

SIZE = 32
# (frontend, format, deployment target) combinations the stage supports
COMBINATIONS = [
    ("onnx", "neuralnetwork", "iOS13"),
    ("onnx", "mlprogram", "iOS15"),
    ("torch", "neuralnetwork", "iOS14"),
    ("torch", "mlprogram", "iOS16"),
]
METADATA = Metadata(
    short_description="tiny FFDNet for tests",
    author="modelbuild tests",
    license="BSD-3-Clause",
    version="1.2.3",
    user_defined={"recipe": "ffdnet", "variant": "test"},
)


class TinyConv(nn.Module):
    """A two-layer conv net whose output stays in [0, 1]: forward(x[1, C, H, W])."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, channels, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(x) + x)


def _seeded(factory: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    model = factory()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding is exercised
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    return model.eval()


def ffdnet_features(variant: str) -> tuple[list[FeatureSpec], list[FeatureSpec]]:
    """The declared interface of the tiny FFDNet, as multi-arrays or as RGB images in 0..255."""
    shape = (1, 3, SIZE, SIZE)
    image_in = ImageInput(scale=1 / 255) if variant == "image" else None
    image_out = ImageOutput(scale=255.0) if variant == "image" else None
    inputs = [FeatureSpec("noisy", shape, "noisy image", image_in), FeatureSpec("sigma", (1,), "noise level")]
    outputs = [FeatureSpec("denoised", shape, "denoised image", image_out)]
    return inputs, outputs


def _export_onnx(model: nn.Module, examples: tuple[torch.Tensor, ...], names: list[str], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, examples, str(path), input_names=names[:-1], output_names=names[-1:],
                          opset_version=17, dynamo=False)
    return path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that take `combination` run once per supported (frontend, format, target)."""
    if "combination" in metafunc.fixturenames:
        metafunc.parametrize("combination", COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])


@pytest.fixture(scope="session")
def metadata() -> Metadata:
    return METADATA


@pytest.fixture(scope="session")
def ffdnet() -> nn.Module:
    return _seeded(lambda: FFDNet(channels=3, features=8, layers=3))


@pytest.fixture(scope="session")
def ffdnet_onnx(ffdnet, tmp_path_factory) -> Path:
    examples = (torch.zeros(1, 3, SIZE, SIZE), torch.zeros(1))
    # ONNX names deliberately unlike the declared ones: convert() must rename
    return _export_onnx(ffdnet, examples, ["input.1", "x", "output"], tmp_path_factory.mktemp("onnx") / "ffdnet.onnx")


@pytest.fixture(scope="session")
def converted_ffdnet(ffdnet, ffdnet_onnx) -> Callable:
    """converted_ffdnet(frontend, format, target, variant, precision) -> MLModel (cached unless fresh)."""
    cache: dict[tuple, object] = {}

    def build(frontend: str, format: str, target: str, variant: str, precision: str = "float32",
              fresh: bool = False):
        key = (frontend, format, target, variant, precision)
        if fresh or key not in cache:
            inputs, outputs = ffdnet_features(variant)
            cache[key] = convert(
                frontend=frontend, onnx_path=ffdnet_onnx, torch_model=ffdnet, inputs=inputs, outputs=outputs,
                format=format, minimum_deployment_target=target, compute_precision=precision, metadata=METADATA,
            )
        return cache[key]

    return build


@pytest.fixture(scope="session")
def tiny_conv() -> Callable[[int], nn.Module]:
    return lambda channels: _seeded(lambda: TinyConv(channels))


@pytest.fixture(scope="session")
def tiny_conv_onnx(tiny_conv, tmp_path_factory) -> Callable[[int], Path]:
    folder = tmp_path_factory.mktemp("tiny")

    def export(channels: int) -> Path:
        path = folder / f"tiny{channels}.onnx"
        if not path.exists():
            _export_onnx(tiny_conv(channels), (torch.zeros(1, channels, SIZE, SIZE),), ["in", "out"], path)
        return path

    return export
