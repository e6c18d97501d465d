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


def _op_output(mlmodel, op_type, occurrence=0):
    """The output name of the `occurrence`-th op of `op_type` in the main function."""
    function = mlmodel.get_spec().mlProgram.functions["main"]
    ops = [op for op in function.block_specializations[function.opset].operations if op.type == op_type]
    return ops[occurrence].outputs[0].name


def _without_first_relu(classifier, x: np.ndarray) -> np.ndarray:
    """torch oracle of the classifier with its first relu removed."""
    with torch.no_grad():
        h = torch.relu(classifier.conv2(classifier.conv1(torch.from_numpy(x))))
        return classifier.fc(classifier.pool(h).flatten(1)).numpy()


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
    with pytest.raises(SurgeryError, match=r"no op with output 'x'; its \(non-const\) op outputs are \["):
        apply_steps(mlprogram_classifier, [{"step": "coreml::delete_layer", "layer": "x"}])
    relu = _op_output(mlprogram_classifier, "relu")
    with pytest.raises(SurgeryError, match=r"no single-value argument 'y'; its arguments are \['x'\]"):
        apply_steps(mlprogram_classifier, [{"step": "coreml::delete_layer", "layer": relu, "argument": "y"}])


def test_rewire_inputs(apply_step, nn_classifier, classifier):
    reshape = _layer_named(nn_classifier, "reshapeStatic")
    inner = _layer_named(nn_classifier, "innerProduct")
    rewired = apply_step(nn_classifier, {"step": "coreml::rewire_inputs", "layer": inner.name,
                                         "inputs": list(reshape.input)})
    assert nn_layer_types(rewired) == CLASSIFIER_LAYERS  # the reshape stays, now unused
    x = sample()
    np.testing.assert_allclose(run_coreml(rewired, {"x": x})["y"].reshape(1, -1), torch_outputs(classifier, x),
                               atol=1e-5)
    with pytest.raises(SurgeryError, match=r"cannot read \['y'\]: a layer or op reads model inputs and the "
                                           r"values computed before it"):
        apply_steps(nn_classifier, [{"step": "coreml::rewire_inputs", "layer": reshape.name, "inputs": ["y"]}])
    with pytest.raises(SurgeryError, match="for a NeuralNetwork model, 'inputs' must be a list of blob names"):
        apply_steps(nn_classifier, [{"step": "coreml::rewire_inputs", "layer": reshape.name, "inputs": {"x": "x"}}])


def test_reshape_to_flatten(apply_step, nn_classifier, classifier):
    flat = apply_step(nn_classifier, {"step": "coreml::reshape_to_flatten"})
    assert nn_layer_types(flat) == [t if t != "reshapeStatic" else "flattenTo2D" for t in CLASSIFIER_LAYERS]
    x = sample()
    np.testing.assert_allclose(run_coreml(flat, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)
    first = nn_classifier.get_spec().neuralNetwork.layers[0].name
    with pytest.raises(SurgeryError, match=f"'{first}' is a convolution"):
        apply_steps(nn_classifier, [{"step": "coreml::reshape_to_flatten", "layers": [first]}])


def test_delete_op_in_an_ml_program(apply_step, mlprogram_classifier, classifier):
    relu = _op_output(mlprogram_classifier, "relu")
    cut = apply_step(mlprogram_classifier, {"step": "coreml::delete_layer", "layer": relu})
    ops = mil_op_types(mlprogram_classifier)
    assert mil_op_types(cut) == ops[:ops.index("relu")] + ops[ops.index("relu") + 1:]
    x = sample()
    np.testing.assert_allclose(run_coreml(cut, {"x": x})["y"], _without_first_relu(classifier, x), atol=1e-5)


def test_rewire_op_in_an_ml_program(apply_step, mlprogram_classifier, classifier):
    second_conv = _op_output(mlprogram_classifier, "conv", 1)
    first_conv = _op_output(mlprogram_classifier, "conv", 0)
    rewired = apply_step(mlprogram_classifier, {"step": "coreml::rewire_inputs", "layer": second_conv,
                                                "inputs": {"x": first_conv}})
    assert mil_op_types(rewired) == mil_op_types(mlprogram_classifier)  # the skipped relu stays, unused
    x = sample()
    np.testing.assert_allclose(run_coreml(rewired, {"x": x})["y"], _without_first_relu(classifier, x), atol=1e-5)
    with pytest.raises(SurgeryError, match=r"has no argument\(s\) \['input'\]; its arguments are \["):
        apply_steps(mlprogram_classifier, [{"step": "coreml::rewire_inputs", "layer": second_conv,
                                            "inputs": {"input": first_conv}}])
    with pytest.raises(SurgeryError, match="for an ML Program model, 'inputs' must be a mapping"):
        apply_steps(mlprogram_classifier, [{"step": "coreml::rewire_inputs", "layer": second_conv,
                                            "inputs": [first_conv]}])


def test_reshape_to_flatten_in_an_ml_program(apply_step, mlprogram_classifier, classifier):
    flat = apply_step(mlprogram_classifier, {"step": "coreml::reshape_to_flatten"})
    ops = mil_op_types(mlprogram_classifier)
    reshape = ops.index("reshape")
    assert mil_op_types(flat) == ops[:reshape] + ["const", "flatten2d"] + ops[reshape + 1:]
    x = sample()
    np.testing.assert_allclose(run_coreml(flat, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)
    relu = _op_output(mlprogram_classifier, "relu")
    with pytest.raises(SurgeryError, match=f"'{relu}' is a relu"):
        apply_steps(mlprogram_classifier, [{"step": "coreml::reshape_to_flatten", "layers": [relu]}])
