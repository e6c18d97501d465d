"""Steps on what the ResNet50 recipe builds: image input, classifier outputs (label + probabilities),
through modelbuild's own converter, NeuralNetwork and ML Program."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from surgery.helpers import CLASSES, SHAPE, run_coreml, torch_outputs

from modelbuild.coreml import Classifier, FeatureSpec, ImageInput, convert

LABELS = tuple(f"class{i}" for i in range(CLASSES))
TARGETS = {"neuralnetwork": "iOS13", "mlprogram": "iOS15"}


@pytest.fixture(scope="module", params=list(TARGETS))
def image_classifier(request, classifier):
    mlmodel = convert(frontend="torch", torch_model=classifier,
                      inputs=[FeatureSpec("image", SHAPE, image=ImageInput(scale=1 / 255))],
                      outputs=[FeatureSpec("logits", (1, CLASSES))], format=request.param,
                      minimum_deployment_target=TARGETS[request.param], classifier=Classifier(LABELS))
    return request.param, mlmodel


def _photo(seed: int) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((*SHAPE[2:], 3)) * 255).astype(np.uint8))


def _torch_probabilities(classifier, photo: Image.Image) -> np.ndarray:
    x = (np.asarray(photo, dtype=np.float32).transpose(2, 0, 1)[None] / 255).astype(np.float32)
    return torch.softmax(torch.from_numpy(torch_outputs(classifier, x)), dim=-1).numpy()[0]


def test_interface_and_weight_steps_on_a_classifier(apply_step, image_classifier, classifier):
    fmt, mlmodel = image_classifier
    mlmodel = apply_step(mlmodel, {"step": "coreml::rename_features",
                                   "names": {"image": "photo", "classLabel": "label"}},
                         renamed={"image": "photo", "classLabel": "label"})
    mlmodel = apply_step(mlmodel, {"step": "coreml::set_metadata", "outputs": {"label": "the likeliest class"}})
    tolerances = {}
    for step in ["coreml::fp16_weights"] + (["coreml::linear_quantize"] if fmt == "mlprogram" else []):
        compressed = apply_step(mlmodel, {"step": step})
        errors = []
        for seed in range(3):
            photo = _photo(seed)
            result = run_coreml(compressed, {"photo": photo})
            expected = _torch_probabilities(classifier, photo)
            assert result["label"] == LABELS[int(expected.argmax())]
            errors.append(max(abs(result["classLabel_probs"][label] - p) for label, p in zip(LABELS, expected)))
        tolerances[step] = float(max(errors))
    print(f"{fmt} classifier: max probability error {tolerances}")
    assert all(0 < error < 1e-3 for error in tolerances.values())
