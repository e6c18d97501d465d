"""Whole converted models on the reference runtime vs eager PyTorch.

FFDNet (small random net for speed; the official weights when present) through
the coremltools torch frontend and through onnx2coreml, with tensor and image
inputs; ResNet50 through both routes (slow). Also: an edited weight in a saved
file changes the output; a reshape that no longer fits raises the named
ShapeMismatchError.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from modelbuild.runtime import ShapeMismatchError, load
from modelbuild.zoo.ffdnet import FFDNet

WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights" / "ffdnet" / "net_rgb.pth"
FFDNET_OPS = ("activation", "add", "clip", "concat", "convolution", "reshapeStatic", "tile", "transpose")


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    spread = float(expected.max() - expected.min()) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max()) / spread


def _torch_to_neuralnetwork(ct, module, example, inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
    return ct.convert(traced, inputs=inputs, convert_to="neuralnetwork",
                      minimum_deployment_target=ct.target.iOS13)


def _onnx_to_neuralnetwork(module, example, names, path: Path):
    import onnx2coreml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), input_names=names, output_names=["y"],
                          opset_version=17, dynamo=False)
    return onnx2coreml.convert(str(path), format="mlmodel")


def _ffdnet(seed=0, channels=3, features=16, layers=4):
    torch.manual_seed(seed)
    net = FFDNet(channels, features, layers).eval()
    for module in net.modules():  # non-trivial BatchNorm statistics, folded by every route
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def ffdnet_case(ct, tmp_path_factory):
    net = _ffdnet()
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.1])
    with torch.no_grad():
        expected = net(x, sigma).numpy()
    folder = tmp_path_factory.mktemp("ffdnet")
    tensor_inputs = [ct.TensorType(name="x", shape=x.shape), ct.TensorType(name="sigma", shape=sigma.shape)]
    torch_model = _torch_to_neuralnetwork(ct, net, (x, sigma), tensor_inputs)
    onnx_model = _onnx_to_neuralnetwork(net, (x, sigma), ["x", "sigma"], folder / "ffdnet.onnx")
    return dict(net=net, x=x, sigma=sigma, expected=expected, folder=folder,
                torch_model=torch_model, onnx_model=onnx_model)


@pytest.mark.ops(*FFDNET_OPS)
def test_ffdnet_torch_frontend_tensor_inputs(ffdnet_case):
    model = load(ffdnet_case["torch_model"], backend="reference")
    out = model.predict({"x": ffdnet_case["x"].numpy(), "sigma": ffdnet_case["sigma"].numpy()})
    (y,) = out.values()
    assert _relative_error(y, ffdnet_case["expected"]) <= 1e-4


@pytest.mark.ops(*FFDNET_OPS, "loadConstantND", "multiply")
def test_ffdnet_onnx2coreml_tensor_inputs(ffdnet_case, tmp_path, ct):
    path = tmp_path / "FFDNet.mlmodel"
    ffdnet_case["onnx_model"].save(str(path))
    model = load(path, backend="reference")
    out = model.predict({"x": ffdnet_case["x"].numpy(), "sigma": ffdnet_case["sigma"].numpy()})
    assert _relative_error(out["y"], ffdnet_case["expected"]) <= 1e-4


def _image_from(x: torch.Tensor):
    from PIL import Image

    pixels = np.round(x[0].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB"), torch.from_numpy(pixels.transpose(2, 0, 1)[None] / np.float32(255))


@pytest.mark.ops(*FFDNET_OPS)
def test_ffdnet_torch_frontend_image_input(ct, ffdnet_case):
    net, sigma = ffdnet_case["net"], ffdnet_case["sigma"]
    image, x = _image_from(ffdnet_case["x"])
    inputs = [ct.ImageType(name="x", shape=x.shape, scale=1 / 255.0), ct.TensorType(name="sigma", shape=sigma.shape)]
    mlmodel = _torch_to_neuralnetwork(ct, net, (x.float(), sigma), inputs)
    model = load(mlmodel, backend="reference")
    assert model.inputs["x"].kind == "image"
    (y,) = model.predict({"x": image, "sigma": sigma.numpy()}).values()
    with torch.no_grad():
        expected = net(x.float(), sigma).numpy()
    assert _relative_error(y, expected) <= 1e-4


@pytest.mark.ops(*FFDNET_OPS, "loadConstantND", "multiply")
def test_ffdnet_onnx2coreml_with_image_input_spec_edit(ffdnet_case):
    """onnx2coreml makes no image inputs: turn x into an RGB image with a 1/255 scaler, as modelbuild does."""
    spec = ffdnet_case["onnx_model"].get_spec()
    feature = next(f for f in spec.description.input if f.name == "x")
    feature.type.imageType.width, feature.type.imageType.height = 48, 32
    feature.type.imageType.colorSpace = 20  # RGB
    step = spec.neuralNetwork.preprocessing.add()
    step.featureName = "x"
    step.scaler.channelScale = 1 / 255.0
    image, x = _image_from(ffdnet_case["x"])
    model = load(spec, backend="reference")
    out = model.predict({"x": image, "sigma": ffdnet_case["sigma"].numpy()})
    with torch.no_grad():
        expected = ffdnet_case["net"](x.float(), ffdnet_case["sigma"]).numpy()
    assert _relative_error(out["y"], expected) <= 1e-4


@pytest.mark.ops("convolution")
def test_editing_a_weight_in_the_saved_file_changes_the_output(ct, ffdnet_case, tmp_path):
    path = tmp_path / "edited.mlmodel"
    spec = ffdnet_case["onnx_model"].get_spec()
    conv = next(layer for layer in spec.neuralNetwork.layers if layer.WhichOneof("layer") == "convolution")
    weights = conv.convolution.weights.floatValue
    weights[0] += 0.5
    ct.utils.save_spec(spec, str(path))
    feeds = {"x": ffdnet_case["x"].numpy(), "sigma": ffdnet_case["sigma"].numpy()}
    edited = load(path, backend="reference").predict(feeds)["y"]
    assert _relative_error(edited, ffdnet_case["expected"]) > 1e-3
    net = _ffdnet()
    with torch.no_grad():
        net.body[0].weight[0, 0, 0, 0] += 0.5
        expected = net(ffdnet_case["x"], ffdnet_case["sigma"]).numpy()
    assert _relative_error(edited, expected) <= 1e-4


class _TinyClassifier(torch.nn.Module):
    """conv -> relu -> flatten -> linear: the flatten is tied to the input size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


@pytest.mark.ops("convolution", "activation", "reshapeStatic", "innerProduct")
@pytest.mark.parametrize("route", ["torch", "onnx"])
def test_reshape_that_no_longer_fits_is_a_named_shape_error(ct, tmp_path, route):
    torch.manual_seed(0)
    net = _TinyClassifier().eval()
    x = torch.rand(1, 3, 8, 8)
    if route == "torch":
        mlmodel = _torch_to_neuralnetwork(ct, net, (x,), [ct.TensorType(name="x", shape=x.shape)])
    else:
        mlmodel = _onnx_to_neuralnetwork(net, (x,), ["x"], tmp_path / "tiny.onnx")
    model = load(mlmodel, backend="reference")
    (y,) = model.predict({"x": x.numpy()}).values()
    with torch.no_grad():
        np.testing.assert_allclose(y.reshape(1, 5), net(x).numpy(), rtol=1e-4, atol=1e-5)
    spec = mlmodel.get_spec()  # the classic mistake: declare a bigger input on a fixed-size graph
    spec.description.input[0].type.multiArrayType.shape[2:] = [16, 16]
    with pytest.raises(ShapeMismatchError, match=r"reshapeStatic layer '.*': element count of the target shape \[1, 256\]: got 256 elements, expected 1024 elements"):
        load(spec, backend="reference").predict({"x": np.zeros((1, 3, 16, 16), dtype=np.float32)})


@pytest.mark.ops("innerProduct")
def test_rewired_layer_raises_shape_mismatch_naming_it(ct, tmp_path):
    torch.manual_seed(0)
    net = _TinyClassifier().eval()
    x = torch.rand(1, 3, 8, 8)
    spec = _torch_to_neuralnetwork(ct, net, (x,), [ct.TensorType(name="x", shape=x.shape)]).get_spec()
    layers = {layer.WhichOneof("layer"): layer for layer in spec.neuralNetwork.layers}
    fc = layers["innerProduct"]
    fc.input[0] = layers["convolution"].output[0]  # skip the flatten: rank-4 [1, 4, 8, 8] still has 256 features
    fc.innerProduct.inputChannels = 128
    with pytest.raises(ShapeMismatchError, match=rf"innerProduct layer '{fc.name}': input features .*got 256, expected inputChannels = 128"):
        load(spec, backend="reference").predict({"x": x.numpy()})


@pytest.mark.slow
@pytest.mark.weights
@pytest.mark.ops(*FFDNET_OPS)
@pytest.mark.skipif(not WEIGHTS.exists(), reason="official FFDNet weights not present")
def test_ffdnet_official_weights_denoise_like_torch(ct):
    from PIL import Image

    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    prefix = "module.intermediate_dncnn.itermediate_dncnn."
    net = FFDNet(3).eval()
    net.load_state_dict({"body." + k[len(prefix):]: v for k, v in state.items()})
    sample = Path(__file__).resolve().parents[2] / "samples" / "astronaut.png"
    clean = np.asarray(Image.open(sample).convert("RGB").resize((128, 128)), dtype=np.float32) / 255
    clean_t = torch.from_numpy(clean.transpose(2, 0, 1)[None].copy())
    noisy = (clean_t + torch.randn(clean_t.shape, generator=torch.Generator().manual_seed(0)) * 25 / 255).float()
    sigma = torch.tensor([25 / 255])
    with torch.no_grad():
        expected = net(noisy, sigma).numpy()
    mlmodel = _torch_to_neuralnetwork(ct, net, (noisy, sigma), [ct.TensorType(name="x", shape=noisy.shape),
                                                               ct.TensorType(name="sigma", shape=sigma.shape)])
    (y,) = load(mlmodel, backend="reference").predict({"x": noisy.numpy(), "sigma": sigma.numpy()}).values()
    assert _relative_error(y, expected) <= 1e-4
    psnr = lambda a: 10 * np.log10(1 / np.mean((a - clean_t.numpy()) ** 2))  # noqa: E731
    assert psnr(y) > psnr(noisy.numpy()) + 5


@pytest.mark.slow
@pytest.mark.ops("convolution", "activation", "add", "pooling", "reshapeStatic", "innerProduct")
@pytest.mark.parametrize("route", ["torch", "onnx"])
def test_resnet50(ct, tmp_path, route):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).numpy()
    if route == "torch":
        mlmodel = _torch_to_neuralnetwork(ct, net, (x,), [ct.TensorType(name="x", shape=x.shape)])
    else:
        mlmodel = _onnx_to_neuralnetwork(net, (x,), ["x"], tmp_path / "resnet50.onnx")
    (y,) = load(mlmodel, backend="reference").predict({"x": x.numpy()}).values()
    assert _relative_error(y.reshape(expected.shape), expected) <= 1e-4


FLEXIBLE_OPS = ("loadConstantND", "gather", "concatND", "reshapeDynamic", "getShape", "floorDivBroadcastable",
                "whereBroadcastable", "equal", "squeeze", "floor", "ceil", "greaterThan", "subtractBroadcastable")


@pytest.mark.ops(*FFDNET_OPS, *FLEXIBLE_OPS)
def test_ffdnet_flexible_input_size(ct, ffdnet_case):
    """A RangeDim H, W conversion computes shapes in the graph; any size in the range runs, others are refused."""
    net, sigma = ffdnet_case["net"], ffdnet_case["sigma"]
    flexible = ct.Shape(shape=(1, 3, ct.RangeDim(16, 128, default=32), ct.RangeDim(16, 128, default=48)))
    inputs = [ct.TensorType(name="x", shape=flexible), ct.TensorType(name="sigma", shape=sigma.shape)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, (ffdnet_case["x"], sigma))
    mlmodel = ct.convert(traced, inputs=inputs, convert_to="neuralnetwork", minimum_deployment_target=ct.target.iOS14)
    model = load(mlmodel, backend="reference")
    assert model.inputs["x"].shape_ranges == ((1, 1), (3, 3), (16, 128), (16, 128))
    for height, width in [(32, 48), (64, 96)]:
        x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        (y,) = model.predict({"x": x.numpy(), "sigma": sigma.numpy()}).values()
        with torch.no_grad():
            assert _relative_error(y, net(x, sigma).numpy()) <= 1e-4
    with pytest.raises(ShapeMismatchError, match=r"Input 'x' has shape \[1, 3, 130, 64\]"):
        model.predict({"x": np.zeros((1, 3, 130, 64), dtype=np.float32), "sigma": sigma.numpy()})
