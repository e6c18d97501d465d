"""Core ML interface steps: rename features, metadata/descriptions, image outputs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from surgery.helpers import convert_coreml, mil_op_types, nn_layer_types, run_coreml, sample, torch_outputs

from modelbuild.surgery import SurgeryError, apply_steps

FORMATS = ["neuralnetwork", "mlprogram"]


@pytest.fixture(params=FORMATS)
def converted(request, nn_classifier, mlprogram_classifier):
    return {"neuralnetwork": nn_classifier, "mlprogram": mlprogram_classifier}[request.param]


def _ops(mlmodel):
    spec = mlmodel.get_spec()
    return nn_layer_types(mlmodel) if spec.WhichOneof("Type") == "neuralNetwork" else mil_op_types(mlmodel)


def test_rename_features(apply_step, converted, classifier):
    renamed = apply_step(converted, {"step": "coreml::rename_features", "names": {"x": "image", "y": "logits"}},
                         renamed={"x": "image", "y": "logits"})
    assert _ops(renamed) == _ops(converted)
    x = sample()
    np.testing.assert_allclose(run_coreml(renamed, {"image": x})["logits"], torch_outputs(classifier, x), atol=1e-5)


def test_rename_features_swap_and_refusals(apply_step, nn_classifier):
    swapped = apply_step(nn_classifier, {"step": "coreml::rename_features", "names": {"x": "y", "y": "x"}},
                         renamed={"x": "y", "y": "x"})
    assert [f.name for f in swapped.get_spec().description.input] == ["y"]
    with pytest.raises(SurgeryError, match=r"no feature\(s\) \['z'\]; its features are \['x', 'y'\]"):
        apply_steps(nn_classifier, [{"step": "coreml::rename_features", "names": {"z": "w"}}])
    with pytest.raises(SurgeryError, match=r"\['y'\] would name two features"):
        apply_steps(nn_classifier, [{"step": "coreml::rename_features", "names": {"x": "y"}}])


def test_set_metadata(apply_step, converted, classifier):
    step = {"step": "coreml::set_metadata", "short_description": "a tiny classifier", "author": "tests",
            "license": "MIT", "version": "2.0", "user_defined": {"recipe": "tiny"},
            "inputs": {"x": "an image tensor"}, "outputs": {"y": "ten logits"}}
    described = apply_step(converted, step)
    spec = described.get_spec()
    meta = spec.description.metadata
    assert (meta.shortDescription, meta.author, meta.license, meta.versionString) == \
        ("a tiny classifier", "tests", "MIT", "2.0")
    assert meta.userDefined["recipe"] == "tiny"
    assert [f.shortDescription for f in spec.description.input] == ["an image tensor"]
    assert [f.shortDescription for f in spec.description.output] == ["ten logits"]
    assert _ops(described) == _ops(converted)
    x = sample()
    np.testing.assert_allclose(run_coreml(described, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)
    with pytest.raises(SurgeryError, match=r"no output\(s\) \['probs'\]"):
        apply_steps(converted, [{"step": "coreml::set_metadata", "outputs": {"probs": "?"}}])


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_to_image(apply_step, image_model, fmt):
    mlmodel = convert_coreml(image_model, fmt, (1, 3, 16, 16))
    imaged = apply_step(mlmodel, {"step": "coreml::output_to_image", "output": "y"},
                        retyped={"y": ("image", ("RGB", 16, 16))})
    assert _ops(imaged) == _ops(mlmodel)
    x = sample()
    picture = run_coreml(imaged, {"x": x})["y"]
    assert isinstance(picture, Image.Image) and picture.mode == "RGB" and picture.size == (16, 16)
    expected = torch_outputs(image_model, x)[0].transpose(1, 2, 0)  # pixels in 0..255, HWC
    assert np.abs(np.asarray(picture).astype(np.float32) - expected).max() <= 1.0


def test_output_to_image_refuses_wrong_shapes(image_model, nn_classifier):
    with pytest.raises(SurgeryError, match=r"shape \[1, 10\]; a RGB image output needs shape \[1, 3, H, W\]"):
        apply_steps(nn_classifier, [{"step": "coreml::output_to_image", "output": "y"}])
    mlmodel = convert_coreml(image_model, "neuralnetwork", (1, 3, 16, 16))
    with pytest.raises(SurgeryError, match=r"GRAYSCALE image output needs shape \[1, 1, H, W\]"):
        apply_steps(mlmodel, [{"step": "coreml::output_to_image", "output": "y", "color_layout": "GRAYSCALE"}])
