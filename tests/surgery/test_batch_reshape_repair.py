"""The ResNet50 write-up's failure and its repair, on a tiny classifier.

Trigger (found by trying, November 2026 stack): a model that flattens with
`x.view(x.size(0), -1)` is exported to ONNX at batch 1 (torch folds the target
to the constant [1, -1]), converted by onnx2coreml to a NeuralNetwork (a
`reshapeStatic` layer with targetShape [1, -1]), then given a flexible batch
dimension. At batch 2 the baked reshape makes [1, 64] out of [2, 32, 1, 1] and
the innerProduct, which expects 32 features, fails: the reference runtime raises
ShapeMismatchError naming the layer, as Core ML refuses the model at run time.

Repairs: `coreml::reshape_to_flatten` (flattenTo2D keeps whatever batch comes),
or the write-up's hand surgery, `coreml::delete_layer` on the reshape (the
innerProduct reads the pooled [B, 32, 1, 1] blob directly). Fixing the ONNX side
alone (`onnx::flatten_shape_reshape`) does not survive: onnx2coreml lowers
Flatten to a reshapeStatic of the conversion's static shape too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from surgery.helpers import CLASSES, SHAPE, export_onnx, nn_layer_types, run_coreml, sample, torch_outputs

from modelbuild.coreml import FeatureSpec, convert
from modelbuild.runtime import ShapeMismatchError
from modelbuild.surgery import apply_steps

MAX_BATCH = 4


def _convert_with_flexible_batch(model: onnx.ModelProto, tmp_path: Path) -> Any:
    """onnx2coreml NeuralNetwork (iOS13) through modelbuild's converter, then batch 1..MAX_BATCH."""
    from coremltools.models.neural_network import flexible_shape_utils

    from modelbuild.quiet import coremltools

    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    mlmodel = convert(frontend="onnx", onnx_path=path, inputs=[FeatureSpec("x", SHAPE)],
                      outputs=[FeatureSpec("y", (1, CLASSES))], format="neuralnetwork",
                      minimum_deployment_target="iOS13")
    spec = mlmodel.get_spec()
    flexible_shape_utils.set_multiarray_ndshape_range(
        spec, "x", lower_bounds=list(SHAPE), upper_bounds=[MAX_BATCH, *SHAPE[1:]])
    return coremltools().models.MLModel(spec)


def _assert_matches_torch(mlmodel: Any, classifier: Any) -> None:
    for batch in (1, 2, MAX_BATCH):
        x = sample(batch)
        y = run_coreml(mlmodel, {"x": x})["y"]
        np.testing.assert_allclose(y.reshape(batch, CLASSES), torch_outputs(classifier, x), atol=1e-5)


@pytest.fixture(scope="module")
def broken(classifier, tmp_path_factory) -> Any:
    return _convert_with_flexible_batch(export_onnx(classifier), tmp_path_factory.mktemp("broken"))


def test_baked_batch_reshape_fails_at_another_batch_size(broken, classifier):
    reshape = next(layer for layer in broken.get_spec().neuralNetwork.layers if layer.WhichOneof("layer") ==
                   "reshapeStatic")
    assert list(reshape.reshapeStatic.targetShape) == [1, -1]
    x = sample(1)
    np.testing.assert_allclose(run_coreml(broken, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)
    with pytest.raises(ShapeMismatchError, match=r"innerProduct layer 'y': input features \(input shape "
                                                 r"\[1, 64\]\): got 64, expected inputChannels = 32"):
        run_coreml(broken, {"x": sample(2)})


def test_reshape_to_flatten_repairs_it(apply_step, broken, classifier):
    repaired = apply_step(broken, {"step": "coreml::reshape_to_flatten"})
    assert "reshapeStatic" not in nn_layer_types(repaired) and "flattenTo2D" in nn_layer_types(repaired)
    _assert_matches_torch(repaired, classifier)


def test_the_write_ups_delete_layer_repairs_it(apply_step, broken, classifier):
    reshape = next(layer.name for layer in broken.get_spec().neuralNetwork.layers
                   if layer.WhichOneof("layer") == "reshapeStatic")
    repaired = apply_step(broken, {"step": "coreml::delete_layer", "layer": reshape})
    assert nn_layer_types(repaired) == ["convolution", "activation", "convolution", "activation", "pooling",
                                        "innerProduct"]
    _assert_matches_torch(repaired, classifier)


def test_an_onnx_side_flatten_alone_does_not_survive_conversion(classifier, tmp_path):
    flat = apply_steps(export_onnx(classifier), [{"step": "onnx::flatten_shape_reshape", "static_targets": True}])
    assert "Flatten" in [node.op_type for node in flat.graph.node]
    converted = _convert_with_flexible_batch(flat, tmp_path)
    reshape = next(layer for layer in converted.get_spec().neuralNetwork.layers
                   if layer.WhichOneof("layer") == "reshapeStatic")
    assert list(reshape.reshapeStatic.targetShape) == [1, 32]  # onnx2coreml bakes the static shape
    with pytest.raises(ShapeMismatchError, match="reshapeStatic layer"):
        run_coreml(converted, {"x": sample(2)})
    _assert_matches_torch(apply_steps(converted, [{"step": "coreml::reshape_to_flatten"}]), classifier)
