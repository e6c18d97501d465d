"""Kernels per op and opset: the function's declared opset, not the op's inputs, picks the semantics.

Each case builds the same op with coremltools' MIL builder at two deployment targets (or
relabels one program's opset, for forms coremltools will not write), runs both in the runtime
and compares with the result each opset's definition in coremltools gives.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelbuild.runtime.mil import MIL_OPS, Program, ProgramFormatError
from modelbuild.runtime.mil.opsets import IOS15, IOS16, IOS17, IOS18, Opset
from modelbuild.runtime.mil.testing import build_mil, mb, to_mlmodel
from modelbuild.runtime.registry import ShapeMismatchError, UnsupportedOpError


def _main_block(spec: Any) -> Any:
    function = spec.mlProgram.functions["main"]
    return function.block_specializations[function.opset]


def _program(build, feeds: dict[str, np.ndarray], target: str, *, opset: str | None = None,
             drop: tuple[str, str] | None = None) -> Program:
    """The runtime's Program of `build` converted at `target`; `opset` relabels the function's
    opset, `drop` = (op type, input) removes an input as a file written by hand may leave it out."""
    mlmodel = to_mlmodel(build_mil(build, feeds, target=target), target=target)
    spec = mlmodel.get_spec()
    if drop is not None:
        op_type, name = drop
        ops = [op for op in _main_block(spec).operations if op.type == op_type]
        assert ops and all(name in op.inputs for op in ops), f"coremltools wrote no {op_type} with {name}"
        for op in ops:
            del op.inputs[name]
    if opset is not None:
        function = spec.mlProgram.functions["main"]
        function.block_specializations[opset].CopyFrom(function.block_specializations[function.opset])
        del function.block_specializations[function.opset]
        function.opset = opset
    return Program.from_spec(spec, mlmodel.weights_dir)


def _run(program: Program, feeds: dict[str, np.ndarray]) -> np.ndarray:
    (value,) = program.run(feeds).values()
    return value


def test_opsets_parse_order_and_print_their_release():
    assert Opset.parse("CoreML7") == IOS17 and IOS15 < IOS16 < IOS17 < IOS18 < Opset.parse("CoreML9")
    assert str(IOS18) == "CoreML8 (iOS18)" and str(Opset.parse("CoreML9")) == "CoreML9 (iOS26)"
    assert str(Opset(12)) == "CoreML12"
    with pytest.raises(ValueError, match="'iOS17' is not an ML Program opset; they are spelled CoreML<N>"):
        Opset.parse("iOS17")


@pytest.mark.ops("scatter")
def test_scatter_negative_index_wraps_in_ios16_and_is_dropped_in_ios17():
    data = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    updates = np.array([[10, 20, 30], [100, 200, 300]], np.float32)
    indices = np.array([-1, 0], np.int32)
    feeds = {"d": data, "u": updates}

    def build(d, u):
        return mb.scatter(data=d, indices=indices, updates=u, mode="add")

    ios16 = _run(_program(build, feeds, "iOS16"), feeds)
    np.testing.assert_array_equal(ios16, [[101, 202, 303], [14, 25, 36]])  # -1 is the last row
    ios17 = _run(_program(build, feeds, "iOS17"), feeds)
    np.testing.assert_array_equal(ios17, [[101, 202, 303], [4, 5, 6]])  # -1 is out of bounds: dropped
    # an iOS17 file without validate_indices (its default is False) still follows iOS17
    without_flag = _program(build, feeds, "iOS17", drop=("scatter", "validate_indices"))
    np.testing.assert_array_equal(_run(without_flag, feeds), ios17)


@pytest.mark.ops("crop_resize")
def test_crop_resize_outside_the_image_takes_the_edge_in_ios15_and_pad_value_from_ios16():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    roi = np.array([-1, 0, 2, 3], np.float32).reshape(1, 1, 4, 1, 1)  # rows -1..2, columns 0..3

    def build(x):
        return mb.crop_resize(x=x, roi=roi, target_height=4, target_width=4, sampling_mode="ALIGN_CORNERS")

    image = x[0, 0]
    ios15 = _run(_program(build, {"x": x}, "iOS15"), {"x": x})
    np.testing.assert_array_equal(ios15[0, 0, 0], image[[0, 0, 1, 2]])  # row -1 repeats the edge row
    padded = np.concatenate([np.zeros((1, 4), np.float32), image[:3]])
    ios16 = _run(_program(build, {"x": x}, "iOS16"), {"x": x})
    np.testing.assert_array_equal(ios16[0, 0, 0], padded)  # pad_value defaults to 0
    without_pad = _program(build, {"x": x}, "iOS16", drop=("crop_resize", "pad_value"))
    np.testing.assert_array_equal(_run(without_pad, {"x": x})[0, 0, 0], padded)


@pytest.mark.ops("reshape")
def test_reshape_zeros_count_from_the_right_only_from_ios17():
    x = np.arange(100, dtype=np.float32).reshape(2, 50)

    def build(x):
        return mb.reshape(x=x, shape=[1, 0, -1, 0])

    got = _run(_program(build, {"x": x}, "iOS17"), {"x": x})
    np.testing.assert_array_equal(got, x.reshape(1, 1, 2, 50))
    as_ios16 = _program(build, {"x": x}, "iOS17", opset="CoreML6")
    with pytest.raises(ShapeMismatchError, match=r"reshape op .*a 0 in shape \[1, 0, -1, 0\] needs as many dims"):
        as_ios16.run({"x": x})


@pytest.mark.ops("non_maximum_suppression")
def test_nms_layout_and_outputs_follow_the_opset():
    boxes = np.array([[[0, 0, 2, 2], [0.1, 0, 2, 2], [5, 5, 1, 1]]], np.float32)  # (n, B, 4)
    scores = np.array([[[0.9], [0.8], [0.3]]], np.float32)  # (n, B, K)
    ios15 = _program(lambda b, s: mb.non_maximum_suppression(boxes=b, scores=s, iou_threshold=0.5, score_threshold=0.5,
                                                             max_boxes=3),
                     {"b": boxes, "s": scores}, "iOS15").run({"b": boxes, "s": scores})
    kept_boxes, kept_scores, indices, counts = ios15.values()
    np.testing.assert_array_equal(indices, [[0, -1, -1]])  # box 1 overlaps box 0; box 2 scores below 0.5
    np.testing.assert_array_equal(counts, [1])
    np.testing.assert_array_equal(kept_boxes[0, 0], boxes[0, 0])
    feeds17 = {"b": np.swapaxes(boxes, 1, 2).copy(), "s": np.swapaxes(scores, 1, 2).copy()}  # (n, 4, B), (n, K, B)
    ios17 = _program(lambda b, s: mb.non_maximum_suppression(boxes=b, scores=s, iou_threshold=0.5, max_boxes=3),
                     feeds17, "iOS17").run(feeds17)
    kept_boxes, kept_scores, indices = ios17.values()  # no score threshold, no counts
    np.testing.assert_array_equal(indices, [[0, 2, -1]])
    np.testing.assert_array_equal(kept_boxes[0, :, :2], boxes[0, [0, 2]].T)
    np.testing.assert_array_equal(kept_scores[0, :, :2], scores[0, [0, 2]].T)


@pytest.mark.ops("resize")
def test_an_op_newer_than_the_programs_opset_is_refused_naming_both_opsets():
    x = np.ones((1, 1, 2, 2), np.float32)

    def build(x):
        return mb.resize(x=x, shape=np.array([4, 4], np.int32), resized_dims=np.uint32(2))

    program = _program(build, {"x": x}, "iOS17", opset="CoreML6")
    with pytest.raises(UnsupportedOpError) as caught:
        program.run({"x": x})
    message = str(caught.value)
    assert message.startswith("The ML Program op 'resize' (in resize op ")
    assert ("is not available in opset CoreML6 (iOS16), the opset its program declares: "
            "Core ML defines it from opset CoreML7 (iOS17) on.") in message
    np.testing.assert_array_equal(_run(_program(build, {"x": x}, "iOS17"), {"x": x}), np.ones((1, 1, 4, 4)))


@pytest.mark.ops("crop_resize")
def test_an_input_the_op_lacks_in_the_programs_opset_is_refused():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    boxes = np.array([[0, 0, 3, 3]], np.float32)

    def build(x):
        return mb.crop_resize(x=x, boxes=boxes, target_height=2, target_width=2, sampling_mode="ALIGN_CORNERS")

    np.testing.assert_array_equal(_run(_program(build, {"x": x}, "iOS17"), {"x": x}), [[[[0, 3], [12, 15]]]])
    as_ios16 = _program(build, {"x": x}, "iOS17", opset="CoreML6")  # iOS16 crop_resize takes roi, not boxes
    with pytest.raises(ProgramFormatError, match=r"^crop_resize op .*: box_indices, boxes are not inputs of "
                       r"crop_resize in opset CoreML6 \(iOS16\), the opset of its program; it takes "
                       r"box_coordinate_mode, normalized_coordinates, pad_value, roi, "):
        as_ios16.run({"x": x})


def test_an_unknown_op_error_names_the_opset_and_what_it_supports():
    x = np.ones((1, 3), np.float32)
    mlmodel = to_mlmodel(build_mil(lambda x: mb.relu(x=x), {"x": x}, target="iOS15"), target="iOS15")
    spec = mlmodel.get_spec()
    (relu,) = [op for op in _main_block(spec).operations if op.type == "relu"]
    relu.type = "frobnicate"
    with pytest.raises(UnsupportedOpError) as caught:
        Program.from_spec(spec, mlmodel.weights_dir).run({"x": x})
    message = str(caught.value)
    assert "no kernel for the ML Program op 'frobnicate' (in frobnicate op " in message
    assert "at opset CoreML5 (iOS15). Supported: " in message
    supported = message.split("Supported: ")[1].rstrip(".").split(", ")
    assert "scatter" in supported and "resize" not in supported and "read_state" not in supported


def test_a_function_with_an_unknown_opset_spelling_is_refused():
    x = np.ones((1, 3), np.float32)
    mlmodel = to_mlmodel(build_mil(lambda x: mb.relu(x=x), {"x": x}, target="iOS15"), target="iOS15")
    spec = mlmodel.get_spec()
    function = spec.mlProgram.functions["main"]
    function.block_specializations["ios15"].CopyFrom(function.block_specializations["CoreML5"])
    function.opset = "ios15"
    with pytest.raises(ProgramFormatError, match="Function 'main': 'ios15' is not an ML Program opset"):
        Program.from_spec(spec, mlmodel.weights_dir)


def _coremltools_versions(name: str) -> list[Opset]:
    """The opsets (iOS15 and later) at which coremltools registers a new class for op `name`."""
    from coremltools import _OPSET
    from coremltools.converters.mil.mil.ops import defs  # noqa: F401  (registers the op classes)
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    variants = SSAOpRegistry.core_ops[name]
    versions, previous = [], None
    for target in sorted(variants):
        if variants[target] is not previous:
            versions.append(max(Opset.parse(_OPSET[target.value]), IOS15))  # target.value: a spec version
            previous = variants[target]
    return sorted(set(versions))


def test_registrations_follow_coremltools_op_versions():
    """Every op starts at the opset coremltools introduces it in, and a runtime kernel changes only
    where coremltools defines a new version (most new versions only widen dtypes: no new kernel)."""
    from coremltools.converters.mil.mil.ops import defs  # noqa: F401
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    states = {"coreml_update_state", "write_state"}  # coremltools' dialect op and its serialised form
    for name in MIL_OPS:
        ours = MIL_OPS.opsets(name)
        if name in states:
            assert ours == [IOS18], name
            continue
        assert name in SSAOpRegistry.core_ops, f"{name} is not a coremltools op"
        theirs = _coremltools_versions(name)
        assert ours[0] == theirs[0], f"{name}: the runtime starts at {ours[0]}, coremltools at {theirs[0]}"
        assert set(ours) <= set(theirs), f"{name}: runtime kernels at {ours}, coremltools versions at {theirs}"
