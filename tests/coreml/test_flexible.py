"""Flexible input shapes: converted models run at every declared shape and match torch; other shapes are refused.

FFDNet (channels=3, features=8, layers=3) through the torch frontend, as
multi-arrays and as images, with a range and with enumerated shapes, for
NeuralNetwork (iOS13) and ML Program (iOS16); each model
runs through the reference runtime at the minimum, default, maximum and one
other allowed shape (ranges) or at every enumerated shape. The onnx frontend
gets flexible shapes for size-agnostic graphs only (converted at the default
shape, then declared flexible in the spec), and the FFDNet write-up's crash
(its fixed reshape run at another size) is reproduced and refused.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modelbuild import runtime
from modelbuild.coreml import (CoreMLBuildError, Enumerated, FeatureSpec, ImageInput, ImageOutput, Range, convert,
                               save_mlmodel)
from modelbuild.runtime import ShapeMismatchError
from modelbuild.zoo.ffdnet import FFDNet

SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}
DEFAULT = (1, 3, 32, 32)
RANGE = Range((None, None, (16, 64, 32), (16, 64, 32)))
RANGE_SHAPES = [(1, 3, 16, 16), DEFAULT, (1, 3, 64, 64), (1, 3, 48, 24)]  # min, default, max, another
ENUMERATED = Enumerated(((1, 3, 32, 32), (1, 3, 16, 48), (1, 3, 64, 64)), default=DEFAULT)
OUTSIDE = {"range": (1, 3, 66, 32), "enumerated": (1, 3, 48, 16)}
FLEXIBLE = {"range": (RANGE, RANGE_SHAPES), "enumerated": (ENUMERATED, list(ENUMERATED.shapes))}
ROUTES = [("neuralnetwork", "iOS13"), ("mlprogram", "iOS16")]
SIGMA = np.array([0.1], dtype=np.float32)


def _interface(variant: str, format: str, flexible) -> tuple[list[FeatureSpec], list[FeatureSpec]]:
    """multiarray: arrays in and out; image: an RGB image in, an image out (ML Program) or an array out."""
    image_in = ImageInput(scale=1 / 255) if variant == "image" else None
    image_out = ImageOutput(scale=255.0) if variant == "image" and format == "mlprogram" else None
    return ([FeatureSpec("noisy", DEFAULT, image=image_in, flexible=flexible), FeatureSpec("sigma", (1,))],
            [FeatureSpec("denoised", DEFAULT, image=image_out)])


def _pixels(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(shape[2], shape[3], 3), dtype=np.uint8)


def _check_at(model, torch_model, shape: tuple[int, ...], variant: str, seed: int, atol: float = 1e-5) -> None:
    """Run the Core ML model at `shape` and compare with torch on the same values (arrays within `atol`)."""
    pixels = _pixels(shape, seed)
    noisy = pixels.astype(np.float32).transpose(2, 0, 1)[None] / 255
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(noisy), torch.from_numpy(SIGMA)).numpy()
    assert np.abs(expected - noisy).max() > 0.05  # the net does something at this size
    feed = Image.fromarray(pixels) if variant == "image" else noisy
    got = model.predict({"noisy": feed, "sigma": SIGMA})["denoised"]
    if isinstance(got, Image.Image):
        assert got.size == (shape[3], shape[2])
        np.testing.assert_allclose(np.asarray(got, dtype=np.float32).transpose(2, 0, 1)[None], expected * 255,
                                   rtol=0, atol=0.5 + 1e-3)  # uint8 rounding
    else:
        assert got.shape == shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def _save_and_load(mlmodel, format: str, tmp_path: Path):
    return runtime.load(save_mlmodel(mlmodel, tmp_path / f"flexible{SUFFIX[format]}"), backend="reference")


@pytest.mark.parametrize("capture", ["trace", "export"])
@pytest.mark.parametrize("kind", ["range", "enumerated"])
@pytest.mark.parametrize("variant", ["multiarray", "image"])
@pytest.mark.parametrize("route", ROUTES, ids=[f"{f}-{t}" for f, t in ROUTES])
def test_ffdnet_runs_at_every_declared_shape(ffdnet, route, variant, kind, capture, tmp_path):
    format, target = route
    flexible, shapes = FLEXIBLE[kind]
    inputs, outputs = _interface(variant, format, flexible)
    mlmodel = convert(frontend="torch", torch_model=ffdnet, inputs=inputs, outputs=outputs, format=format,
                      minimum_deployment_target=target, capture=capture)
    model = _save_and_load(mlmodel, format, tmp_path)
    declared = model.inputs["noisy"]
    if kind == "range":
        expected_ranges = ((16, 64), (16, 64)) if variant == "image" else ((1, 1), (3, 3), (16, 64), (16, 64))
        assert declared.shape_ranges == expected_ranges
    else:
        sizes = [s[2:] if variant == "image" else s for s in ENUMERATED.shapes]
        assert sorted(declared.enumerated_shapes) == sorted(sizes)
    with pytest.raises(ShapeMismatchError, match="noisy"):  # outside the declared set: refused at run time
        outside = OUTSIDE[kind]
        feed = Image.fromarray(_pixels(outside, 0)) if variant == "image" else np.zeros(outside, np.float32)
        model.predict({"noisy": feed, "sigma": SIGMA})
    for seed, shape in enumerate(shapes):
        _check_at(model, ffdnet, shape, variant, seed)


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES, ids=[f"{f}-{t}" for f, t in ROUTES])
def test_float16_flexible_ffdnet(ffdnet, route, tmp_path):
    """fp16 weights (NeuralNetwork) or fp16 compute (ML Program) keep the flexible shapes."""
    format, target = route
    inputs, outputs = _interface("multiarray", format, RANGE)
    mlmodel = convert(frontend="torch", torch_model=ffdnet, inputs=inputs, outputs=outputs, format=format,
                      minimum_deployment_target=target, compute_precision="float16")
    model = _save_and_load(mlmodel, format, tmp_path)
    for seed, shape in enumerate(RANGE_SHAPES):
        _check_at(model, ffdnet, shape, "multiarray", seed, atol=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize("capture", ["trace", "export"])
@pytest.mark.parametrize("route", ROUTES, ids=[f"{f}-{t}" for f, t in ROUTES])
def test_ffdnet_pad_odd_runs_at_odd_sizes(ffdnet, route, capture, tmp_path):
    """FFDNet(pad_odd=True) repeats the last row/column and crops, in the graph: odd sizes in the range work.

    With capture 'export' the graph computes the padded size with integer division and the crop with a
    size-oblivious min: modelbuild.coreml.exported_program makes both convertible."""
    format, target = route
    padded = FFDNet(channels=3, features=8, layers=3, pad_odd=True).eval()
    padded.load_state_dict(ffdnet.state_dict())
    odd_range = Range((None, None, (15, 65, 32), (15, 65, 32)))
    inputs, outputs = _interface("multiarray", format, odd_range)
    mlmodel = convert(frontend="torch", torch_model=padded, inputs=inputs, outputs=outputs, format=format,
                      minimum_deployment_target=target, capture=capture)
    model = _save_and_load(mlmodel, format, tmp_path)
    for seed, shape in enumerate([(1, 3, 15, 15), DEFAULT, (1, 3, 65, 65), (1, 3, 33, 20)]):
        _check_at(model, padded, shape, "multiarray", seed)


def test_dynamic_tile_needs_ios14_for_a_flexible_neuralnetwork():
    """An `expand` to sizes read from a flexible input becomes a dynamic tile, a layer of iOS14: iOS13 says so."""

    class ExpandNoise(torch.nn.Module):
        def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            return x + sigma.reshape(n, 1, 1, 1).expand(n, c, h, w)

    inputs, outputs = _interface("multiarray", "neuralnetwork", RANGE)
    with pytest.raises(CoreMLBuildError,
                       match=r"feature 'Dynamic Tile operation'.*Fix: set `minimum_deployment_target: iOS14`"):
        convert(frontend="torch", torch_model=ExpandNoise().eval(), inputs=inputs, outputs=outputs,
                format="neuralnetwork", minimum_deployment_target="iOS13")


@pytest.mark.parametrize("kind", ["range", "enumerated"])
@pytest.mark.parametrize("image", [False, True], ids=["multiarray", "image"])
def test_onnx_route_makes_a_size_agnostic_graph_flexible(tiny_conv, tiny_conv_onnx, kind, image, tmp_path):
    """Converted at 32x32 by onnx2coreml, declared flexible in the NeuralNetwork spec, right at every shape."""
    flexible, shapes = FLEXIBLE[kind]
    feature = FeatureSpec("photo", DEFAULT, image=ImageInput(scale=1 / 255) if image else None, flexible=flexible)
    mlmodel = convert(frontend="onnx", onnx_path=tiny_conv_onnx(3), inputs=[feature],
                      outputs=[FeatureSpec("styled", DEFAULT)], format="neuralnetwork",
                      minimum_deployment_target="iOS13")
    model = _save_and_load(mlmodel, "neuralnetwork", tmp_path)
    assert model.inputs["photo"].is_flexible
    for seed, shape in enumerate(shapes):
        pixels = _pixels(shape, seed)
        x = pixels.astype(np.float32).transpose(2, 0, 1)[None] / 255
        with torch.no_grad():
            expected = tiny_conv(3)(torch.from_numpy(x)).numpy()
        got = model.predict({"photo": Image.fromarray(pixels) if image else x})["styled"]
        assert got.shape == shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    outside = OUTSIDE[kind]
    with pytest.raises(ShapeMismatchError, match="photo"):
        model.predict({"photo": Image.fromarray(_pixels(outside, 0)) if image else np.zeros(outside, np.float32)})


def test_writeup_crash_reproduced_and_refused(ffdnet, ffdnet_onnx, tmp_path):
    """FFDNet via ONNX at 32x32, then a flexible spec (what the write-up did): its reshape fails at 64x64.

    convert() refuses that request before converting, naming the size-bound ops and the working route.
    """
    from modelbuild.coreml.flexible import make_spec_flexible
    from modelbuild.quiet import coremltools

    ct = coremltools()
    inputs, outputs = _interface("multiarray", "neuralnetwork", None)
    fixed = convert(frontend="onnx", onnx_path=ffdnet_onnx, inputs=inputs, outputs=outputs, format="neuralnetwork",
                    minimum_deployment_target="iOS13")
    spec = fixed.get_spec()
    flexible_inputs = [FeatureSpec("noisy", DEFAULT, flexible=RANGE), inputs[1]]
    make_spec_flexible(spec, flexible_inputs)
    model = _save_and_load(ct.models.MLModel(spec), "neuralnetwork", tmp_path)
    with pytest.raises(ShapeMismatchError, match=r"reshapeStatic layer .*element count"):
        model.predict({"noisy": np.zeros((1, 3, 64, 64), np.float32), "sigma": SIGMA})
    with pytest.raises(CoreMLBuildError, match=r"has Concat, .*Reshape, .*Use frontend 'torch'"):
        convert(frontend="onnx", onnx_path=ffdnet_onnx, inputs=flexible_inputs, outputs=outputs,
                format="neuralnetwork", minimum_deployment_target="iOS13")


def test_onnx_constant_with_a_spatial_size_is_size_bound(tmp_path):
    """Adding a constant of the full image size works only at that size: refused."""

    class AddPattern(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pattern = torch.nn.Parameter(torch.rand(1, 3, 32, 32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.pattern)

    path = tmp_path / "pattern.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(AddPattern().eval(), (torch.zeros(DEFAULT),), str(path), opset_version=17, dynamo=False)
    with pytest.raises(CoreMLBuildError, match=re.escape("has Add with a constant of shape [1, 3, 32, 32], which fix")):
        convert(frontend="onnx", onnx_path=path, inputs=[FeatureSpec("x", DEFAULT, flexible=RANGE)],
                outputs=[FeatureSpec("y", DEFAULT)], format="neuralnetwork", minimum_deployment_target="iOS13")


def test_several_enumerated_inputs_on_neuralnetwork(tmp_path):
    """Each input has its own list of shapes; a shape pair from the lists runs."""

    class Difference(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a - 2 * b

    shapes = ((1, 2, 3), (1, 4, 5))
    inputs = [FeatureSpec("a", shapes[0], flexible=Enumerated(shapes, shapes[0])),
              FeatureSpec("b", shapes[0], flexible=Enumerated(shapes + ((1, 6, 7),), shapes[0]))]
    mlmodel = convert(frontend="torch", torch_model=Difference().eval(), inputs=inputs,
                      outputs=[FeatureSpec("y", shapes[0])], format="neuralnetwork", minimum_deployment_target="iOS14")
    model = _save_and_load(mlmodel, "neuralnetwork", tmp_path)
    rng = np.random.default_rng(0)
    for shape in shapes:
        a, b = rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)
        np.testing.assert_allclose(model.predict({"a": a, "b": b})["y"], a - 2 * b, rtol=0, atol=1e-6)


def test_onnx_export_with_dynamic_axes_is_converted_at_the_default_shape(tiny_conv, tmp_path):
    """onnx2coreml needs fixed input shapes: dynamic axes get the declared default sizes, then the spec is flexible."""
    path = tmp_path / "dynamic.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tiny_conv(3), (torch.zeros(DEFAULT),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"x": {2: "height", 3: "width"}, "y": {2: "height", 3: "width"}})
    mlmodel = convert(frontend="onnx", onnx_path=path, inputs=[FeatureSpec("photo", DEFAULT, flexible=RANGE)],
                      outputs=[FeatureSpec("styled", DEFAULT)], format="neuralnetwork",
                      minimum_deployment_target="iOS13")
    model = _save_and_load(mlmodel, "neuralnetwork", tmp_path)
    rng = np.random.default_rng(4)
    for shape in RANGE_SHAPES:
        x = rng.random(shape, dtype=np.float32)
        with torch.no_grad():
            expected = tiny_conv(3)(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(model.predict({"photo": x})["styled"], expected, rtol=0, atol=1e-5)


def test_rank_6_reshape_with_flexible_shapes_names_the_fix():
    """A rank-6 space-to-depth converts at a fixed size (folded away) but not with flexible sizes."""

    class RankSixSpaceToDepth(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
            return x.reshape(n, c * 4, h // 2, w // 2)

    outputs = [FeatureSpec("y", (1, 12, 16, 16))]
    convert(frontend="torch", torch_model=RankSixSpaceToDepth().eval(), inputs=[FeatureSpec("x", DEFAULT)],
            outputs=outputs, format="mlprogram", minimum_deployment_target="iOS16")
    with pytest.raises(CoreMLBuildError, match=r"rank 6 tensor.*reshape to rank 5 or less, as modelbuild.zoo"):
        convert(frontend="torch", torch_model=RankSixSpaceToDepth().eval(), outputs=outputs, format="mlprogram",
                inputs=[FeatureSpec("x", DEFAULT, flexible=RANGE)], minimum_deployment_target="iOS16")
