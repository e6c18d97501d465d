"""Exact per-channel normalisation of image inputs: (scale * pixel + bias[c]) * channel_scale[c].

Oracle: torchvision's `normalize((pixels / 255), mean, std)` fed to the torch
model, against the converted model run by the reference runtime on the same
image, for every frontend and format.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import normalize

from modelbuild import runtime
from modelbuild.coreml import CoreMLBuildError, FeatureSpec, ImageInput, convert, save_mlmodel
from modelbuild.quiet import coremltools

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "chelsea.png"
SIZE = 32
SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}
# deliberately very different std values, so a single shared scale would be far off
MEAN, STD = (0.485, 0.456, 0.406), (0.1, 0.5, 2.0)


def _photo() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)


@pytest.mark.parametrize("layout", ["RGB", "BGR"])
def test_mean_std_normalisation_matches_torchvision(tiny_conv, tiny_conv_onnx, combination, layout, tmp_path):
    frontend, format, target = combination
    shape = (1, 3, SIZE, SIZE)
    # mean/std are given in the tensor's channel order, so B, G, R for BGR
    image = ImageInput.from_mean_std(MEAN, STD, color_layout=layout)
    mlmodel = convert(frontend=frontend, onnx_path=tiny_conv_onnx(3), torch_model=tiny_conv(3),
                      inputs=[FeatureSpec("photo", shape, image=image)], outputs=[FeatureSpec("styled", shape)],
                      format=format, minimum_deployment_target=target)
    photo = _photo()
    pixels = torch.from_numpy(np.asarray(photo, dtype=np.float32).transpose(2, 0, 1).copy())
    if layout == "BGR":
        pixels = pixels.flip(0)
    with torch.no_grad():
        expected = tiny_conv(3)(normalize(pixels / 255, MEAN, STD)[None]).numpy()
        unscaled = tiny_conv(3)(((pixels / 255) - torch.tensor(MEAN).reshape(3, 1, 1))[None]).numpy()
    assert np.abs(expected - unscaled).max() > 0.05  # channel_scale matters for this model
    path = save_mlmodel(mlmodel, tmp_path / f"m{SUFFIX[format]}")
    got = runtime.load(path, backend="reference").predict({"photo": photo})["styled"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_scalar_part_stays_in_core_ml_preprocessing(tiny_conv):
    """NeuralNetwork: the ImageScaler keeps scale and bias; only the per-channel factor is a layer."""
    coremltools()
    image = ImageInput.from_mean_std(MEAN, STD)
    mlmodel = convert(frontend="torch", torch_model=tiny_conv(3), format="neuralnetwork",
                      minimum_deployment_target="iOS13",
                      inputs=[FeatureSpec("photo", (1, 3, SIZE, SIZE), image=image)],
                      outputs=[FeatureSpec("styled", (1, 3, SIZE, SIZE))])
    network = mlmodel.get_spec().neuralNetwork
    (scaler,) = [p.scaler for p in network.preprocessing]
    assert scaler.channelScale == pytest.approx(1 / 255)
    assert (scaler.redBias, scaler.greenBias, scaler.blueBias) == pytest.approx([-m for m in MEAN])
    layers = {out: layer for layer in network.layers for out in layer.output}
    (multiply,) = [layer for layer in network.layers if "photo" in layer.input]  # every other use is rewired
    assert multiply.WhichOneof("layer") == "multiply"
    (factor_name,) = [name for name in multiply.input if name != "photo"]
    factors = layers[factor_name].loadConstantND
    assert (list(factors.shape), list(factors.data.floatValue)) == ([1, 3, 1, 1], pytest.approx([1 / s for s in STD]))
    recorded = mlmodel.get_spec().description.metadata.userDefined["modelbuild.coreml.photo.channel_scale"]
    assert [float(v) for v in recorded.split(", ")] == pytest.approx([1 / s for s in STD], rel=1e-8)


@pytest.mark.parametrize("channel_scale,message", [
    ((1.0, 2.0), "An image channel_scale of 2 values (1.0, 2.0) does not fit color layout 'RGB'"),
    ((1.0, 0.0, 1.0), "Image input 'photo' has channel_scale (1.0, 0.0, 1.0); give finite, non-zero numbers"),
    ((1.0, float("nan"), 1.0), "Image input 'photo' has channel_scale (1.0, nan, 1.0)"),
])
def test_bad_channel_scale_refused(tiny_conv, channel_scale, message):
    image = ImageInput(scale=1 / 255, channel_scale=channel_scale)
    with pytest.raises(CoreMLBuildError, match=re.escape(message)):
        convert(frontend="torch", torch_model=tiny_conv(3), format="mlprogram", minimum_deployment_target="iOS15",
                inputs=[FeatureSpec("photo", (1, 3, SIZE, SIZE), image=image)],
                outputs=[FeatureSpec("styled", (1, 3, SIZE, SIZE))])
