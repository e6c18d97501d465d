"""Core ML layer/op steps: add softmax, delete a layer, rewire inputs, reshape -> flatten."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from surgery.helpers import mil_op_types, nn_layer_types, run_coreml, sample, torch_outputs

from modelbuild.surgery import SurgeryError, apply_steps

CLASSIFIER_LAYERS = ["convolution", "activation", "convolution", "activation", "pooling", "reshapeStatic",
                     "innerProduct"]


def _layer_named(mlmodel, kind):
    return next(layer for layer in mlmodel.get_spec().neuralNetwork.layers if layer.WhichOneof("layer") == kind)


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()


def test_add_softmax_neuralnetwork(apply_step, nn_classifier, classifier):
    assert nn_layer_types(nn_classifier) == CLASSIFIER_LAYERS
    probs = apply_step(nn_classifier, {"step": "coreml::add_softmax"})
    assert nn_layer_types(probs) == CLASSIFIER_LAYERS + ["softmaxND"]
    x = sample()
    y = run_coreml(probs, {"x": x})["y"]
    np.testing.assert_allclose(y, _softmax(torch_outputs(classifier, x)), atol=1e-6)
    np.testing.assert_allclose(y.sum(), 1.0, atol=1e-6)


def test_add_softmax_mlprogram(apply_step, mlprogram_classifier, classifier):
    probs = apply_step(mlprogram_classifier, {"step": "coreml::add_softmax", "output": "y", "axis": 1})
    assert mil_op_types(probs) == mil_op_types(mlprogram_classifier) + ["const", "softmax"]
    x = sample()
    np.testing.assert_allclose(run_coreml(probs, {"x": x})["y"], _softmax(torch_outputs(classifier, x)), atol=1e-6)


def test_add_softmax_needs_the_output_name_when_there_are_several(nn_classifier):
    with pytest.raises(SurgeryError, match=r"no output\(s\) \['logits'\]; its outputs are \['y'\]"):
        apply_steps(nn_classifier, [{"step": "coreml::add_softmax", "output": "logits"}])


def test_delete_layer_connects_consumers_to_its_input(apply_step, nn_classifier, classifier):
    reshape = _layer_named(nn_classifier, "reshapeStatic")
    cut = apply_step(nn_classifier, {"step": "coreml::delete_layer", "layer": reshape.name})
    assert nn_layer_types(cut) == [t for t in CLASSIFIER_LAYERS if t != "reshapeStatic"]
    assert list(_layer_named(cut, "innerProduct").input) == list(reshape.input)
    x = sample()
    y = run_coreml(cut, {"x": x})["y"]  # innerProduct reads [1, 32, 1, 1] now: the same 32 features
    np.testing.assert_allclose(y.reshape(1, -1), torch_outputs(classifier, x), atol=1e-5)


def test_delete_layer_refusals(nn_classifier, mlprogram_classifier):
    with pytest.raises(SurgeryError, match=r"no layer 'nope'; its layers are \["):
        apply_steps(nn_classifier, [{"step": "coreml::delete_layer", "layer": "nope"}])
    last = nn_classifier.get_spec().neuralNetwork.layers[-1].name
    with pytest.raises(SurgeryError, match=r"writes the model output\(s\) \['y'\]"):
        apply_steps(nn_classifier, [{"step": "coreml::delete_layer", "layer": last}])
    with pytest.raises(SurgeryError, match="edits NeuralNetwork layers; this model is a mlprogram model"):
        apply_steps(mlprogram_classifier, [{"step": "coreml::delete_layer", "layer": "x"}])


def test_rewire_inputs(apply_step, nn_classifier, classifier):
    reshape = _layer_named(nn_classifier, "reshapeStatic")
    inner = _layer_named(nn_classifier, "innerProduct")
    rewired = apply_step(nn_classifier, {"step": "coreml::rewire_inputs", "layer": inner.name,
                                         "inputs": list(reshape.input)})
    assert nn_layer_types(rewired) == CLASSIFIER_LAYERS  # the reshape stays, now unused
    x = sample()
    np.testing.assert_allclose(run_coreml(rewired, {"x": x})["y"].reshape(1, -1), torch_outputs(classifier, x),
                               atol=1e-5)
    with pytest.raises(SurgeryError, match=r"cannot read \['y'\]: a layer reads model inputs and outputs of "
                                           r"the layers before it"):
        apply_steps(nn_classifier, [{"step": "coreml::rewire_inputs", "layer": reshape.name, "inputs": ["y"]}])


def test_reshape_to_flatten(apply_step, nn_classifier, classifier):
    flat = apply_step(nn_classifier, {"step": "coreml::reshape_to_flatten"})
    assert nn_layer_types(flat) == [t if t != "reshapeStatic" else "flattenTo2D" for t in CLASSIFIER_LAYERS]
    x = sample()
    np.testing.assert_allclose(run_coreml(flat, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)
    first = nn_classifier.get_spec().neuralNetwork.layers[0].name
    with pytest.raises(SurgeryError, match=f"layer '{first}' is a convolution"):
        apply_steps(nn_classifier, [{"step": "coreml::reshape_to_flatten", "layers": [first]}])
