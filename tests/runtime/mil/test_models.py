"""Whole models through the ML Program runtime, compared with PyTorch.

FFDNet (seeded, and the official IPOL weights when present) through both
frontends (coremltools' torch converter, onnx2coreml), ResNet50 (seeded) through
the torch converter; fp32 must match PyTorch to 1e-4 of the output range, fp16
is judged by PSNR (FFDNet) or relative error and top-1 agreement (ResNet50).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modelbuild.runtime.mil import Program
from modelbuild.runtime.mil.testing import ct
from modelbuild.zoo.ffdnet import FFDNet

WEIGHTS = Path("/work/shared/weights/ffdnet/net_rgb.pth")
SAMPLES = Path(__file__).resolve().parents[3] / "samples"
PRECISIONS = {"fp32": ct.precision.FLOAT32, "fp16": ct.precision.FLOAT16}


@pytest.fixture
def report(request):
    """Attach a measured figure to the test (JUnit property, shown with -rA via user_properties)."""
    return lambda name, value: request.node.user_properties.append((name, value))


def psnr(got: np.ndarray, reference: np.ndarray, peak: float = 1.0) -> float:
    mse = np.mean((got.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def convert_with_torch(model: torch.nn.Module, inputs: dict[str, torch.Tensor], precision: str) -> Program:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, tuple(inputs.values()))
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name=name, shape=value.shape) for name, value in inputs.items()],
        outputs=[ct.TensorType(name="y")],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=PRECISIONS[precision],
    )
    return Program.from_spec(mlmodel.get_spec(), mlmodel.weights_dir)


def convert_with_onnx2coreml(model: torch.nn.Module, inputs: dict[str, torch.Tensor], precision: str) -> Program:
    import onnx
    import onnx2coreml

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(inputs.values()), buffer, input_names=list(inputs), output_names=["y"],
                          opset_version=17, dynamo=False)
    mlmodel = onnx2coreml.convert(onnx.load_from_string(buffer.getvalue()), format="mlpackage",
                                  minimum_deployment_target="iOS16", compute_precision=precision)
    return Program.from_spec(mlmodel.get_spec(), mlmodel.weights_dir)


FRONTENDS = {"torch": convert_with_torch, "onnx2coreml": convert_with_onnx2coreml}


def run_single_output(program: Program, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    outputs = program.run({name: value.numpy() for name, value in inputs.items()})
    (output,) = outputs.values()
    return output.astype(np.float32)


def seeded_ffdnet() -> FFDNet:
    torch.manual_seed(0)
    model = FFDNet(channels=3, features=16, layers=4).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so that folding them is tested
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model


def noisy_photo(size: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of the astronaut sample with Gaussian noise (torch seed 0), and the clean crop."""
    image = np.asarray(Image.open(SAMPLES / "astronaut.png").convert("RGB"), np.float32) / 255
    clean = torch.from_numpy(image[:size, 128:128 + size].copy()).permute(2, 0, 1)[None]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * sigma
    return (clean + noise).float(), clean


def check_against_torch(got: np.ndarray, reference: np.ndarray, precision: str, min_psnr_db: float) -> float:
    """fp32: max abs error <= 1e-4 of the output range; fp16: PSNR >= min_psnr_db. Returns the PSNR."""
    value = psnr(got, reference, peak=float(np.ptp(reference)))
    if precision == "fp32":
        assert np.abs(got - reference).max() <= 1e-4 * np.ptp(reference)
    else:
        assert value >= min_psnr_db, f"fp16 PSNR {value:.1f} dB < {min_psnr_db} dB"
    return value


@pytest.mark.ops("conv", "relu", "reshape", "transpose", "concat", "sub", "clip")
@pytest.mark.parametrize("frontend", list(FRONTENDS))
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_seeded_ffdnet(frontend, precision, report):
    model = seeded_ffdnet()
    noisy, _ = noisy_photo(48, 25 / 255)
    inputs = {"x": noisy, "sigma": torch.tensor([25 / 255])}
    with torch.no_grad():
        reference = model(*inputs.values()).numpy()
    program = FRONTENDS[frontend](model, inputs, precision)
    agreement = check_against_torch(run_single_output(program, inputs), reference, precision, min_psnr_db=50)
    report("psnr_vs_torch_db", round(agreement, 2))


@pytest.mark.slow
@pytest.mark.weights
@pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"official FFDNet weights not found at {WEIGHTS}")
@pytest.mark.ops("conv", "relu", "reshape", "transpose", "concat", "sub", "clip")
@pytest.mark.parametrize("frontend", list(FRONTENDS))
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_official_ffdnet_denoises_like_torch(frontend, precision, report):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module.").replace("intermediate_dncnn.itermediate_dncnn.", "body."): v
             for k, v in state.items()}
    model = FFDNet(channels=3).eval()
    model.load_state_dict(state)
    noisy, clean = noisy_photo(256, 25 / 255)
    inputs = {"x": noisy, "sigma": torch.tensor([25 / 255])}
    with torch.no_grad():
        reference = model(*inputs.values()).numpy()
    got = run_single_output(FRONTENDS[frontend](model, inputs, precision), inputs)
    agreement = check_against_torch(got, reference, precision, min_psnr_db=50)
    denoised, torch_denoised = psnr(got, clean.numpy()), psnr(reference, clean.numpy())
    report("psnr_vs_torch_db", round(agreement, 2))
    report("denoised_psnr_db", round(denoised, 2))
    assert abs(denoised - torch_denoised) < 0.05  # measured: 33.35 dB both (sigma 25, 256 x 256 crop)


@pytest.mark.slow
@pytest.mark.ops("conv", "relu", "max_pool", "add", "reduce_mean", "reshape", "linear")
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_resnet50(precision, report):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x).numpy()
    got = run_single_output(convert_with_torch(model, {"x": x}, precision), {"x": x})
    relative = float(np.abs(got - reference).max() / np.ptp(reference))
    report("max_abs_error_over_range", relative)
    if precision == "fp32":
        assert relative <= 1e-4
    else:
        assert relative <= 2e-3  # measured 3.3e-4 (fp16 weights and activations through 53 convs)
    assert got.argmax() == reference.argmax()
