"""The official FFDNet colour weights, converted, denoise like torch does (reference runtime)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modelbuild import runtime
from modelbuild.coreml import FeatureSpec, ImageInput, ImageOutput, convert
from modelbuild.zoo.ffdnet import FFDNet

WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights" / "ffdnet" / "net_rgb.pth"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "astronaut.png"
SIZE, SIGMA = 128, 25 / 255
# max abs error vs torch*255 on the uint8 output: rounding (0.5) plus this fraction of 255
RELATIVE_TOLERANCE = {"float32": 1e-4, "float16": 5e-3}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.weights,
    pytest.mark.skipif(not WEIGHTS.exists(), reason=f"official FFDNet weights not found at {WEIGHTS}"),
]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def official_ffdnet() -> FFDNet:
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state = {k.replace("module.intermediate_dncnn.itermediate_dncnn.", "body."): v for k, v in state.items()}
    model = FFDNet(channels=3)
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def noisy_astronaut() -> tuple[np.ndarray, Image.Image]:
    clean = np.asarray(Image.open(SAMPLE).convert("RGB").resize((SIZE, SIZE)), dtype=np.float32) / 255
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)).numpy() * SIGMA
    noisy = Image.fromarray(np.round(np.clip(clean + noise, 0, 1) * 255).astype(np.uint8))
    return clean.transpose(2, 0, 1)[None], noisy


@pytest.mark.parametrize("frontend,format,target,precision", [
    ("onnx", "neuralnetwork", "iOS13", "float32"),
    ("torch", "neuralnetwork", "iOS14", "float16"),
    ("onnx", "mlprogram", "iOS15", "float32"),
    ("torch", "mlprogram", "iOS16", "float16"),
])
def test_official_weights_denoise_like_torch(official_ffdnet, noisy_astronaut, tmp_path,
                                             frontend, format, target, precision):
    clean, noisy_image = noisy_astronaut
    shape = (1, 3, SIZE, SIZE)
    onnx_path = tmp_path / "ffdnet.onnx"
    if frontend == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(official_ffdnet, (torch.zeros(shape), torch.zeros(1)), str(onnx_path),
                              input_names=["x", "sigma"], output_names=["y"], opset_version=17, dynamo=False)
    mlmodel = convert(
        frontend=frontend, onnx_path=onnx_path, torch_model=official_ffdnet,
        inputs=[FeatureSpec("noisy", shape, image=ImageInput(scale=1 / 255)), FeatureSpec("sigma", (1,))],
        outputs=[FeatureSpec("denoised", shape, image=ImageOutput(scale=255.0))],
        format=format, minimum_deployment_target=target, compute_precision=precision,
    )
    sigma = np.array([SIGMA], dtype=np.float32)
    got = runtime.load(mlmodel, backend="reference").predict({"noisy": noisy_image, "sigma": sigma})["denoised"]
    got = np.asarray(got, dtype=np.float32).transpose(2, 0, 1)[None] / 255

    noisy = np.asarray(noisy_image, dtype=np.float32).transpose(2, 0, 1)[None] / 255
    with torch.no_grad():
        expected = official_ffdnet(torch.from_numpy(noisy), torch.from_numpy(sigma)).numpy()
    assert np.abs(got - expected).max() * 255 <= 0.5 + RELATIVE_TOLERANCE[precision] * 255
    assert _psnr(expected, clean) > _psnr(noisy, clean) + 5  # torch really denoises ...
    assert _psnr(got, clean) > _psnr(expected, clean) - 0.1  # ... and Core ML as well as torch
