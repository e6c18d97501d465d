"""Converted models compute what the torch model computes, run by the reference runtime.

Oracles are the torch models themselves (on x/255 for image inputs, output*255
for image outputs) with the image scale/bias/colour-order arithmetic redone in
numpy here. Every model is saved with save_mlmodel and loaded from disk, as the
validation stage does.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modelbuild import runtime
from modelbuild.coreml import FeatureSpec, ImageInput, ImageOutput, convert, save_mlmodel

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "astronaut.png"
SIZE = 32
# max abs error allowed, as a fraction of the torch output's range
RELATIVE_TOLERANCE = {"float32": 1e-4, "float16": 2e-3}
SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}


def _sample(mode: str) -> Image.Image:
    return Image.open(SAMPLE).convert(mode).resize((SIZE, SIZE), Image.Resampling.BILINEAR)


def _run(mlmodel, format: str, tmp_path: Path, feeds: dict) -> dict:
    path = save_mlmodel(mlmodel, tmp_path / f"model{SUFFIX[format]}")
    return runtime.load(path, backend="reference").predict(feeds)


def _torch(model, *arrays: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays)).numpy()


@pytest.mark.parametrize("precision", ["float32", "float16"])
@pytest.mark.parametrize("variant", ["multiarray", "image"])
def test_ffdnet_matches_torch(converted_ffdnet, ffdnet, combination, variant, precision, tmp_path):
    frontend, format, target = combination
    mlmodel = converted_ffdnet(frontend, format, target, variant, precision)
    sigma = np.array([0.1], dtype=np.float32)
    if variant == "multiarray":
        noisy = np.random.default_rng(0).random((1, 3, SIZE, SIZE), dtype=np.float32)
        got = _run(mlmodel, format, tmp_path, {"noisy": noisy, "sigma": sigma})["denoised"]
        expected = _torch(ffdnet, noisy, sigma)
        assert isinstance(got, np.ndarray) and got.shape == expected.shape
    else:
        image = _sample("RGB")
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None]
        noisy = pixels / 255
        got_image = _run(mlmodel, format, tmp_path, {"noisy": image, "sigma": sigma})["denoised"]
        assert isinstance(got_image, Image.Image) and got_image.size == (SIZE, SIZE)
        got = np.asarray(got_image, dtype=np.float32).transpose(2, 0, 1)[None]
        expected = _torch(ffdnet, noisy, sigma) * 255
    assert np.abs(expected - noisy * (255 if variant == "image" else 1)).max() > 0.05  # the net does something
    value_range = float(expected.max() - expected.min())
    tolerance = RELATIVE_TOLERANCE[precision] * value_range + (0.5 if variant == "image" else 0.0)  # uint8 rounding
    assert np.abs(got - expected).max() <= tolerance


def _tiny_interface(layout: str) -> tuple[ImageInput, ImageOutput, np.ndarray, np.ndarray]:
    """Image parameters with non-trivial scale and per-channel bias, in tensor channel order."""
    if layout == "GRAYSCALE":
        bias_in, bias_out = np.array([-0.5]), np.array([12.0])
    else:
        bias_in, bias_out = np.array([-1.0, -0.9, -0.8]), np.array([10.0, 20.0, 30.0])
    return (ImageInput(scale=1 / 127.5, bias=tuple(bias_in), color_layout=layout),
            ImageOutput(scale=200.0, bias=tuple(bias_out), color_layout=layout), bias_in, bias_out)


@pytest.mark.parametrize("layout", ["GRAYSCALE", "BGR", "RGB"])
def test_image_scale_bias_and_colour_order(tiny_conv, tiny_conv_onnx, combination, layout, tmp_path):
    frontend, format, target = combination
    channels = 1 if layout == "GRAYSCALE" else 3
    image_in, image_out, bias_in, bias_out = _tiny_interface(layout)
    shape = (1, channels, SIZE, SIZE)
    mlmodel = convert(
        frontend=frontend, onnx_path=tiny_conv_onnx(channels), torch_model=tiny_conv(channels),
        inputs=[FeatureSpec("photo", shape, image=image_in)], outputs=[FeatureSpec("styled", shape, image=image_out)],
        format=format, minimum_deployment_target=target,
    )
    image = _sample("L" if layout == "GRAYSCALE" else "RGB")
    pixels = np.asarray(image, dtype=np.float32).reshape(SIZE, SIZE, channels).transpose(2, 0, 1)
    if layout == "BGR":
        pixels = pixels[::-1]  # the network sees channels in B, G, R order
    tensor = pixels / 127.5 + bias_in.reshape(-1, 1, 1)
    out = _torch(tiny_conv(channels), tensor[None])[0] * 200.0 + bias_out.reshape(-1, 1, 1)
    if layout == "BGR":
        out = out[::-1]  # back to R, G, B for the PIL image
    expected = np.clip(out, 0, 255).transpose(1, 2, 0).reshape(SIZE, SIZE, -1)

    got_image = _run(mlmodel, format, tmp_path, {"photo": image})["styled"]
    assert got_image.mode == ("L" if layout == "GRAYSCALE" else "RGB")
    got = np.asarray(got_image, dtype=np.float32).reshape(SIZE, SIZE, -1)
    assert np.abs(got - expected).max() <= 0.5 + 1e-4 * 255


def test_declared_names_win_over_internal_values_with_the_same_name(ffdnet, tmp_path):
    """The traced FFDNet has internal values named x, noise and input: declare those as features."""
    shape = (1, 3, SIZE, SIZE)
    mlmodel = convert(
        frontend="torch", torch_model=ffdnet, format="mlprogram", minimum_deployment_target="iOS15",
        inputs=[FeatureSpec("x", shape), FeatureSpec("noise", (1,))], outputs=[FeatureSpec("input", shape)],
    )
    spec = mlmodel.get_spec()
    assert [f.name for f in spec.description.input] == ["x", "noise"]
    assert [f.name for f in spec.description.output] == ["input"]
    noisy = np.random.default_rng(1).random(shape, dtype=np.float32)
    sigma = np.array([0.2], dtype=np.float32)
    got = _run(mlmodel, "mlprogram", tmp_path, {"x": noisy, "noise": sigma})["input"]
    assert np.abs(got - _torch(ffdnet, noisy, sigma)).max() <= 1e-5


def test_conversion_prints_nothing(ffdnet, ffdnet_onnx, capfd):
    shape = (1, 3, SIZE, SIZE)
    inputs = [FeatureSpec("noisy", shape, image=ImageInput(scale=1 / 255)), FeatureSpec("sigma", (1,))]
    outputs = [FeatureSpec("denoised", shape, image=ImageOutput(scale=255.0))]
    for frontend, format, target, precision in [("torch", "neuralnetwork", "iOS13", "float16"),
                                                ("torch", "mlprogram", "iOS16", "float16"),
                                                ("onnx", "neuralnetwork", "iOS14", "float32")]:
        convert(frontend=frontend, onnx_path=ffdnet_onnx, torch_model=ffdnet, inputs=inputs, outputs=outputs,
                format=format, minimum_deployment_target=target, compute_precision=precision)
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


class _Difference(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - 2 * b


@pytest.mark.parametrize("frontend", ["onnx", "torch"])
def test_features_are_named_by_position_even_when_names_swap(frontend, tmp_path):
    """ONNX inputs a, b declared as b, a: the first declared name goes to the first argument."""
    shape = (1, 2, 3)
    onnx_path = tmp_path / "difference.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Difference(), (torch.zeros(shape), torch.zeros(shape)), str(onnx_path),
                          input_names=["a", "b"], output_names=["a_minus_2b"], opset_version=17, dynamo=False)
    mlmodel = convert(
        frontend=frontend, onnx_path=onnx_path, torch_model=_Difference().eval(),
        inputs=[FeatureSpec("b", shape), FeatureSpec("a", shape)],
        outputs=[FeatureSpec("difference", shape)], format="mlprogram", minimum_deployment_target="iOS15",
    )
    first, second = (np.random.default_rng(seed).random(shape, dtype=np.float32) for seed in (2, 3))
    got = _run(mlmodel, "mlprogram", tmp_path, {"b": first, "a": second})["difference"]
    np.testing.assert_allclose(got, first - 2 * second, rtol=0, atol=1e-6)
