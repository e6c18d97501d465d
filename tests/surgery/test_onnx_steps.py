"""ONNX steps: interface checked by apply_step, op types asserted, numbers compared with onnxruntime/torch."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from surgery.helpers import export_onnx, onnx_op_types, run_onnx, sample, torch_outputs

from modelbuild.surgery import SurgeryError, apply_steps

RESHAPE_CHAIN = ["Shape", "Gather", "Unsqueeze", "Concat"]


def test_rename_inputs_and_outputs(apply_step, classifier):
    model = export_onnx(classifier)
    renamed = apply_step(model, {"step": "onnx::rename_inputs", "names": {"x": "image"}}, renamed={"x": "image"})
    renamed = apply_step(renamed, {"step": "onnx::rename_outputs", "names": {"y": "logits"}},
                         renamed={"y": "logits"})
    assert onnx_op_types(renamed) == onnx_op_types(model)
    x = sample()
    np.testing.assert_array_equal(run_onnx(renamed, {"image": x})["logits"], run_onnx(model, {"x": x})["y"])


def test_rename_swaps_and_refuses_unknown_or_taken_names(apply_step, classifier):
    model = export_onnx(classifier)
    with pytest.raises(SurgeryError, match=r"no input\(s\) \['nope'\]; its inputs are \['x'\]"):
        apply_steps(model, [{"step": "onnx::rename_inputs", "names": {"nope": "a"}}])
    with pytest.raises(SurgeryError, match=r"\['y'\] already name"):
        apply_steps(model, [{"step": "onnx::rename_inputs", "names": {"x": "y"}}])
    swapped = apply_step(model, {"step": "onnx::rename_outputs", "names": {"y": "z"}}, renamed={"y": "z"})
    assert "y" not in {name for node in swapped.graph.node for name in node.output}


def _unsqueeze_axes_as_input(model: onnx.ModelProto) -> bool:
    unsqueeze = next(n for n in model.graph.node if n.op_type == "Unsqueeze")
    return len(unsqueeze.input) == 2 and not unsqueeze.attribute


def test_set_opset_upgrades(apply_step, classifier):
    model = export_onnx(classifier, opset=11, dynamic_batch=True)
    assert not _unsqueeze_axes_as_input(model)
    x = sample(batch=3)
    expected = torch_outputs(classifier, x)
    for opset in (13, 17):
        converted = apply_step(model, {"step": "onnx::set_opset", "opset": opset})
        assert [o.version for o in converted.opset_import if o.domain == ""] == [opset]
        assert _unsqueeze_axes_as_input(converted)  # opset 13 moved Unsqueeze's axes to an input
        np.testing.assert_allclose(run_onnx(converted, {"x": x})["y"], expected, atol=1e-5)


def test_set_opset_refusal_names_both_versions(classifier):
    model = export_onnx(classifier, opset=17, dynamic_batch=True)  # onnx cannot take Shape-15 down
    with pytest.raises(SurgeryError, match="from opset 17 to 11: .*Shape"):
        apply_steps(model, [{"step": "onnx::set_opset", "opset": 11}])


def test_flatten_shape_reshape_replaces_the_view_pattern(apply_step, classifier):
    model = export_onnx(classifier, dynamic_batch=True)
    ops = onnx_op_types(model)
    assert all(op in ops for op in RESHAPE_CHAIN + ["Reshape"])  # the pattern is there to replace
    flat = apply_step(model, {"step": "onnx::flatten_shape_reshape"})
    assert onnx_op_types(flat) == ["Conv", "Relu", "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    for batch in (1, 3):
        x = sample(batch)
        np.testing.assert_allclose(run_onnx(flat, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)


def test_flatten_shape_reshape_static_targets(apply_step, classifier):
    model = export_onnx(classifier, batch=2)  # torch folds the target to the constant [2, -1]
    assert "Reshape" in onnx_op_types(model) and "Shape" not in onnx_op_types(model)
    with pytest.raises(SurgeryError, match="static_targets: true"):
        apply_steps(model, [{"step": "onnx::flatten_shape_reshape"}])
    flat = apply_step(model, {"step": "onnx::flatten_shape_reshape", "static_targets": True})
    assert "Reshape" not in onnx_op_types(flat) and "Flatten" in onnx_op_types(flat)
    assert not [t for t in flat.graph.initializer if t.dims == [2]]  # the [2, -1] target is gone
    x = sample(2)
    np.testing.assert_allclose(run_onnx(flat, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)


def test_fold_constants_collapses_shape_arithmetic(apply_step, classifier):
    model = export_onnx(classifier, fold=False)  # Constant/Unsqueeze/Concat chain feeding Reshape
    assert onnx_op_types(model).count("Constant") >= 2
    folded = apply_step(model, {"step": "onnx::fold_constants"})
    assert onnx_op_types(folded) == ["Conv", "Relu", "Conv", "Relu", "GlobalAveragePool", "Reshape", "Gemm"]
    target = {t.name: onnx.numpy_helper.to_array(t) for t in folded.graph.initializer}[folded.graph.node[5].input[1]]
    assert target.tolist() == [1, -1]
    x = sample()
    np.testing.assert_allclose(run_onnx(folded, {"x": x})["y"], run_onnx(model, {"x": x})["y"], atol=1e-6)


def test_fold_constants_keeps_dynamic_shapes_dynamic(apply_step, classifier):
    model = export_onnx(classifier, dynamic_batch=True)
    folded = apply_step(model, {"step": "onnx::fold_constants"})
    assert "Shape" in onnx_op_types(folded)  # the batch size is not known: nothing to fold
    pinned = onnx.ModelProto()
    pinned.CopyFrom(model)
    for value in (pinned.graph.input[0], pinned.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    folded = apply_step(pinned, {"step": "onnx::fold_constants"})
    assert not set(RESHAPE_CHAIN) & set(onnx_op_types(folded))  # static now: the chain folds away
    x = sample()
    np.testing.assert_allclose(run_onnx(folded, {"x": x})["y"], torch_outputs(classifier, x), atol=1e-5)
    unfolded = apply_step(pinned, {"step": "onnx::fold_constants", "fold_shapes": False})
    assert "Shape" in onnx_op_types(unfolded)


def test_flatten_shape_reshape_with_a_sliced_shape(apply_step):
    """The opset-15 form: Shape(x, start=0, end=1) ++ [-1] (built by hand; torch does not emit it)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Shape", ["r"], ["n"], start=0, end=1),
         helper.make_node("Concat", ["n", "minus_one"], ["target"], axis=0),
         helper.make_node("Reshape", ["r", "target"], ["y"])],
        "sliced_shape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        [numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    flat = apply_step(model, {"step": "onnx::flatten_shape_reshape"})
    assert onnx_op_types(flat) == ["Relu", "Flatten"] and not flat.graph.initializer
    x = np.random.default_rng(0).standard_normal((3, 4, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(run_onnx(flat, {"x": x})["y"], np.maximum(x, 0).reshape(3, -1))
