"""Classifiers: the logits become a label and a probability dictionary, equal to torch's argmax and softmax.

The tiny classifier has an image input with ImageNet mean/std normalisation
(exact per channel: Core ML's scale/bias plus an in-graph per-channel mul) and
the 1000 ImageNet labels of torchvision's metadata; the oracle is torch on
torchvision's `normalize` of the same pixels.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms.functional import normalize

from modelbuild import runtime
from modelbuild.coreml import Classifier, CoreMLBuildError, FeatureSpec, ImageInput, convert, save_mlmodel
from modelbuild.coreml.spec_edits import FRONTEND_KEY
from modelbuild.inspection import describe_file

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LABELS = tuple(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIZE = 32
SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}
CLASSIFIER = Classifier(labels=LABELS)


class TinyClassifier(nn.Module):
    """conv -> relu -> global average pool -> linear: logits [1, 1000] spread over roughly +-10."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, len(LABELS))
        with torch.no_grad():
            self.fc.weight.mul_(40.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@pytest.fixture(scope="module")
def classifier_model() -> nn.Module:
    return TinyClassifier().eval()


@pytest.fixture(scope="module")
def classifier_onnx(classifier_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("classifier") / "tiny_classifier.onnx"
    torch.onnx.export(classifier_model, (torch.zeros(1, 3, SIZE, SIZE),), str(path), input_names=["x"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    return path


def _photos() -> list[Image.Image]:
    paths = sorted(SAMPLES.glob("*.png")) + sorted(SAMPLES.glob("*.jp*g"))
    assert paths, f"no sample photos in {SAMPLES}"
    return [Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR) for p in paths]


def _torch_probabilities(model: nn.Module, photo: Image.Image) -> np.ndarray:
    pixels = torch.from_numpy(np.asarray(photo, dtype=np.float32).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        return torch.softmax(model(normalize(pixels / 255, MEAN, STD)), dim=-1)[0].numpy()


def _convert(model, onnx_path, combination, classifier=CLASSIFIER, **overrides):
    frontend, format, target = combination
    arguments = dict(
        frontend=frontend, onnx_path=onnx_path, torch_model=model, format=format, minimum_deployment_target=target,
        inputs=[FeatureSpec("image", (1, 3, SIZE, SIZE), image=ImageInput.from_mean_std(MEAN, STD))],
        outputs=[FeatureSpec("logits", (1, len(LABELS)), "class probabilities")], classifier=classifier,
    )
    arguments.update(overrides)
    return convert(**arguments)


def test_label_and_probabilities_match_torch(classifier_model, classifier_onnx, combination, tmp_path):
    _check_label_and_probabilities(classifier_model, _convert(classifier_model, classifier_onnx, combination),
                                   combination[1], tmp_path)


@pytest.mark.parametrize("route", [("torch", "neuralnetwork", "iOS13"), ("torch", "mlprogram", "iOS16")],
                         ids=["neuralnetwork", "mlprogram"])
def test_torch_export_capture_gets_every_program_edit(classifier_model, route, tmp_path):
    """capture 'export': the same names, per-channel image scaling and classifier outputs as the trace."""
    mlmodel = _convert(classifier_model, None, route, capture="export")
    assert mlmodel.get_spec().description.metadata.userDefined[FRONTEND_KEY] == f"torch {torch.__version__} torch.export"
    _check_label_and_probabilities(classifier_model, mlmodel, route[1], tmp_path)


def _check_label_and_probabilities(classifier_model, mlmodel, format: str, tmp_path) -> None:
    model = runtime.load(save_mlmodel(mlmodel, tmp_path / f"c{SUFFIX[format]}"), backend="reference")
    for photo in _photos():
        expected = _torch_probabilities(classifier_model, photo)
        assert expected.max() > 0.05 and np.sort(expected)[-2] < expected.max() - 1e-3  # a clear top-1
        got = model.predict({"image": photo})
        assert set(got) == {"classLabel", "classLabel_probs"}
        assert got["classLabel"] == LABELS[int(expected.argmax())]
        probabilities = got["classLabel_probs"]
        assert list(probabilities) == list(LABELS)
        np.testing.assert_allclose([probabilities[label] for label in LABELS], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("route", [("torch", "neuralnetwork", "iOS13"), ("onnx", "mlprogram", "iOS16")],
                         ids=["torch-neuralnetwork", "onnx-mlprogram"])
def test_float16_classifier_agrees_on_top1(classifier_model, classifier_onnx, route, tmp_path):
    """fp16 weights (NeuralNetwork) or fp16 compute (ML Program): same label, probabilities within 5e-3."""
    mlmodel = _convert(classifier_model, classifier_onnx, route, compute_precision="float16")
    model = runtime.load(save_mlmodel(mlmodel, tmp_path / f"c{SUFFIX[route[1]]}"), backend="reference")
    for photo in _photos():
        expected = _torch_probabilities(classifier_model, photo)
        got = model.predict({"image": photo})
        assert got["classLabel"] == LABELS[int(expected.argmax())]
        np.testing.assert_allclose([got["classLabel_probs"][label] for label in LABELS], expected, rtol=0, atol=5e-3)


def test_inspect_shows_label_and_probabilities(classifier_model, classifier_onnx, tmp_path):
    mlmodel = _convert(classifier_model, classifier_onnx, ("torch", "neuralnetwork", "iOS13"),
                       classifier=Classifier(LABELS, predicted_feature_name="species", probabilities_output="odds"))
    path = save_mlmodel(mlmodel, tmp_path / "c.mlmodel")
    text = describe_file(path)
    assert re.search(r"species\b.*string", text, re.IGNORECASE | re.DOTALL), text
    assert re.search(r"odds\b.*dict", text, re.IGNORECASE | re.DOTALL), text
    assert "class probabilities" in text  # the logits' description goes to the probabilities output


def test_without_softmax_the_output_is_passed_through(tmp_path):
    """add_softmax=False: for a model that already ends in softmax, probabilities are not squashed twice."""
    torch.manual_seed(1)
    labels = ("cat", "dog", "bird", "fish")
    model = nn.Sequential(nn.Linear(6, 4), nn.Softmax(dim=-1)).eval()
    mlmodel = convert(frontend="torch", torch_model=model, format="mlprogram", minimum_deployment_target="iOS15",
                      inputs=[FeatureSpec("x", (1, 6))], outputs=[FeatureSpec("p", (1, 4))],
                      classifier=Classifier(labels, add_softmax=False))
    x = np.random.default_rng(0).normal(size=(1, 6)).astype(np.float32)
    got = runtime.load(save_mlmodel(mlmodel, tmp_path / "m.mlpackage")).predict({"x": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose([got["classLabel_probs"][label] for label in labels], expected, rtol=0, atol=1e-6)
    assert got["classLabel"] == labels[int(expected.argmax())]


@pytest.mark.parametrize("classifier,outputs,message", [
    (Classifier(("a", "b")), None,
     "Classifier output 'logits' has shape (1, 1000); with 2 labels it must be a multi-array of shape (1, 2) or (2,)"),
    (Classifier(("a", "b", "a")), None, "Classifier labels must be unique; ['a'] appear more than once."),
    (Classifier(()), None, "Classifier labels must be a non-empty sequence of strings; got ()."),
    (Classifier(LABELS, predicted_feature_name="image"), None,
     "Classifier outputs 'image' and 'classLabel_probs' need two names different from each other and from the inputs"),
    (Classifier(LABELS, probabilities_output="class probs"), None,
     "Classifier output name 'class probs' is not valid"),
    (CLASSIFIER, [FeatureSpec("logits", (1, 1000)), FeatureSpec("features", (1, 16))],
     "A classifier has one model output, the logits; 2 outputs were declared ['logits', 'features']."),
])
def test_refused(classifier_model, classifier, outputs, message):
    overrides = {"outputs": outputs} if outputs else {}
    with pytest.raises(CoreMLBuildError, match=re.escape(message)):
        _convert(classifier_model, None, ("torch", "mlprogram", "iOS15"), classifier=classifier, **overrides)


@pytest.mark.slow
@pytest.mark.parametrize("route", [("torch", "neuralnetwork", "iOS13"), ("onnx", "mlprogram", "iOS15")],
                         ids=["torch-neuralnetwork", "onnx-mlprogram"])
def test_resnet50_classifier_matches_torch(route, tmp_path):
    """The ResNet50 case: a seeded torchvision resnet50, exact ImageNet normalisation, 1000 labels."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    size = 224
    onnx_path = tmp_path / "resnet50.onnx"
    if route[0] == "onnx":
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(onnx_path), input_names=["x"],
                          output_names=["logits"], opset_version=17, dynamo=False)
    format = route[1]
    mlmodel = convert(
        frontend=route[0], onnx_path=onnx_path, torch_model=model, format=format,
        minimum_deployment_target=route[2], classifier=CLASSIFIER,
        inputs=[FeatureSpec("image", (1, 3, size, size), image=ImageInput.from_mean_std(MEAN, STD))],
        outputs=[FeatureSpec("logits", (1, 1000))],
    )
    loaded = runtime.load(save_mlmodel(mlmodel, tmp_path / f"r{SUFFIX[format]}"), backend="reference")
    photo = Image.open(SAMPLES / "astronaut.png").convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    expected = _torch_probabilities(model, photo)
    got = loaded.predict({"image": photo})
    assert got["classLabel"] == LABELS[int(expected.argmax())]
    np.testing.assert_allclose([got["classLabel_probs"][label] for label in LABELS], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("logits_name", ["classLabel", "classLabel_probs"])
def test_logits_may_carry_a_classifier_output_name_and_be_rank_1(logits_name, tmp_path):
    """The classifier's output names win; the logits value is renamed out of the way."""

    class FirstRow(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(2)
            self.linear = nn.Linear(6, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x)[0]

    labels = ("cat", "dog", "bird", "fish")
    model = FirstRow().eval()
    mlmodel = convert(frontend="torch", torch_model=model, format="mlprogram", minimum_deployment_target="iOS15",
                      inputs=[FeatureSpec("x", (1, 6))], outputs=[FeatureSpec(logits_name, (4,))],
                      classifier=Classifier(labels))
    x = np.random.default_rng(3).normal(size=(1, 6)).astype(np.float32)
    got = runtime.load(save_mlmodel(mlmodel, tmp_path / "m.mlpackage")).predict({"x": x})
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)), dim=-1).numpy()
    assert got["classLabel"] == labels[int(expected.argmax())]
    np.testing.assert_allclose([got["classLabel_probs"][label] for label in labels], expected, rtol=0, atol=1e-6)
