"""Program loading and running: weights, feeds, intermediate outputs, errors, classify, control flow."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from modelbuild.runtime.mil import MIL_OPS, Program, ProgramFormatError
from modelbuild.runtime.mil.kernel import OpContext
from modelbuild.runtime.mil.opsets import IOS15, IOS18
from modelbuild.runtime.mil.testing import build_mil, ct, mb, run_mil, to_program
from modelbuild.runtime.registry import ShapeMismatchError, UnsupportedOpError


def _convert(program, **kwargs):
    kwargs.setdefault("compute_precision", ct.precision.FLOAT32)
    kwargs.setdefault("minimum_deployment_target", ct.target.iOS16)
    return ct.convert(program, convert_to="mlprogram", **kwargs)


@pytest.fixture
def conv_model(rng):
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)  # 108 values: stored in weight.bin

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 6, 6))], opset_version=ct.target.iOS16)
    def program(x):
        return mb.relu(x=mb.conv(x=x, weight=weight, pad_type="same", name="features"), name="out")

    return _convert(program, pass_pipeline=ct.PassPipeline.EMPTY), weight


@pytest.mark.ops("const", "conv", "relu")
def test_weights_from_blob_file_and_intermediate_outputs(conv_model, rng):
    model, weight = conv_model
    program = Program.from_spec(model.get_spec(), model.weights_dir)
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    features = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight), padding=1)
    outputs = program.run({"x": x})
    assert list(outputs) == ["out"]
    np.testing.assert_allclose(outputs["out"], torch.relu(features).numpy(), rtol=1e-5, atol=1e-5)
    everything = program.run({"x": x}, intermediate=True)
    assert {"features", "out"} <= set(everything)
    np.testing.assert_allclose(everything["features"], features.numpy(), rtol=1e-5, atol=1e-5)


def test_blob_weights_without_a_weights_directory_is_a_clear_error(conv_model):
    model, _ = conv_model
    with pytest.raises(ProgramFormatError, match=r"stores weights in '@model_path/weights/weight.bin' but no weights directory"):
        Program.from_spec(model.get_spec(), None)


def test_feeds_are_checked_by_name_and_shape_and_cast_to_the_declared_dtype(conv_model):
    model, _ = conv_model
    program = Program.from_spec(model.get_spec(), model.weights_dir)
    with pytest.raises(KeyError, match=r"Missing input 'x' \(tensor<fp32, \[1, 3, 6, 6\]>\)"):
        program.run({})
    with pytest.raises(ShapeMismatchError, match=r"Input 'x' is declared tensor<fp32, \[1, 3, 6, 6\]> but the feed has shape \(1, 3, 6, 7\)"):
        program.run({"x": np.zeros((1, 3, 6, 7), np.float32)})
    with pytest.raises(ValueError, match=r"Unknown input\(s\) y; the function 'main' takes x"):
        program.run({"x": np.zeros((1, 3, 6, 6), np.float32), "y": np.zeros(1)})
    as_int = program.run({"x": np.ones((1, 3, 6, 6), np.int64)})["out"]
    assert as_int.dtype == np.float32


@pytest.mark.ops("add")
def test_fp16_inputs_get_fp16_feeds():
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(4,), dtype=types.fp16)], opset_version=ct.target.iOS16)
    def program(x):
        return mb.add(x=x, y=np.float16(1.0))

    runtime = to_program(program)
    assert runtime.inputs[0].type.dtype == np.float16
    x = np.array([1e-4, 0.1, 1000.3, 2049.0], np.float32)
    got = runtime.run({"x": x})
    (out,) = got.values()
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, (torch.from_numpy(x).half() + 1).numpy())


def test_an_unsupported_op_names_itself_and_lists_the_supported_ones(conv_model):
    model, _ = conv_model
    spec = model.get_spec()
    block = spec.mlProgram.functions["main"].block_specializations["CoreML6"]
    (relu,) = [op for op in block.operations if op.type == "relu"]
    relu.type = "frobnicate"  # an op no Core ML version has
    runtime = Program.from_spec(spec, model.weights_dir)
    with pytest.raises(UnsupportedOpError) as caught:
        runtime.run({"x": np.zeros((1, 3, 6, 6), np.float32)})
    message = str(caught.value)
    assert "no kernel for the ML Program op 'frobnicate' (in frobnicate op 'out' (tensor<fp32, [1, 4, 6, 6]>))" in message
    assert "Supported: abs, acos, add," in message and ", conv, " in message


def test_a_neural_network_spec_is_refused():
    spec = ct.proto.Model_pb2.Model()
    spec.neuralNetwork.SetInParent()
    with pytest.raises(ProgramFormatError, match="of type 'neuralNetwork', not an ML Program"):
        Program.from_spec(spec)


@pytest.mark.ops("classify", "softmax")
def test_classifier_gives_label_and_probabilities():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3))], opset_version=ct.target.iOS15)
    def program(x):
        return mb.softmax(x=x)

    model = _convert(program, classifier_config=ct.ClassifierConfig(["cat", "dog", "eel"]),
                     minimum_deployment_target=ct.target.iOS15)
    x = np.array([[0.1, 0.9, 0.2]], np.float32)
    got = Program.from_spec(model.get_spec(), model.weights_dir).run({"x": x})
    expected = torch.softmax(torch.from_numpy(x), 1)[0].tolist()
    assert got["classLabel"] == "dog"
    assert list(got["classLabel_probs"]) == ["cat", "dog", "eel"]
    np.testing.assert_allclose(list(got["classLabel_probs"].values()), expected, rtol=1e-6)


@pytest.mark.ops("classify")
def test_classify_with_integer_classes_gives_an_int_label():
    from coremltools.proto import MIL_pb2

    from modelbuild.runtime.mil.values import TensorType

    context = OpContext("classify", ["label", "probs"], [TensorType(MIL_pb2.DataType.INT64, ()), TensorType(MIL_pb2.DataType.FLOAT64, ())])
    label, probabilities = MIL_OPS.get("classify", opset=IOS15)(
        context, probabilities=np.array([[0.2, 0.3, 0.5]], np.float32), classes=[np.int64(3), np.int64(7), np.int64(9)]
    )
    assert label == 9 and type(label) is int
    assert probabilities == pytest.approx({3: 0.2, 7: 0.3, 9: 0.5})
    with pytest.raises(ShapeMismatchError, match="one value per class"):
        MIL_OPS.get("classify", opset=IOS15)(context, probabilities=np.zeros(2, np.float32), classes=[1, 2, 3])


@pytest.mark.ops("cond", "while_loop")
def test_control_flow(rng):
    x = rng.uniform(0, 1, (2, 3)).astype(np.float32)

    def build(x):
        def keep_going(a, i):
            return mb.less(x=i, y=np.int32(5))

        def body(a, i):
            return mb.mul(x=a, y=1.5), mb.add(x=i, y=np.int32(1))

        looped, count = mb.while_loop(_cond=keep_going, _body=body, loop_vars=(x, np.int32(0)))
        total = mb.reduce_sum(x=x)
        big = mb.cond(pred=mb.greater(x=total, y=100.0), _true_fn=lambda: mb.mul(x=x, y=2.0),
                      _false_fn=lambda: mb.mul(x=x, y=3.0))
        small = mb.cond(pred=mb.less(x=total, y=100.0), _true_fn=lambda: mb.sub(x=x, y=1.0),
                        _false_fn=lambda: mb.sub(x=x, y=2.0))
        return looped, count, big, small

    looped, count, big, small = run_mil(build, {"x": x})
    t = torch.from_numpy(x)
    np.testing.assert_allclose(looped, (t * 1.5**5).numpy(), rtol=1e-6)
    assert count == 5
    np.testing.assert_allclose(big, (t * 3).numpy())
    np.testing.assert_allclose(small, (t - 1).numpy())


@pytest.mark.ops("read_state", "write_state", "coreml_update_state")
def test_states_persist_between_runs():
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.StateTensorSpec((2, 3), dtype=types.fp16), mb.TensorSpec((2, 3), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def program(total, x):
        updated = mb.add(x=mb.read_state(input=total), y=x)
        mb.coreml_update_state(state=total, value=updated)
        return mb.mul(x=updated, y=np.float16(2))

    runtime = to_program(program, target="iOS18")
    state = runtime.make_state()
    assert list(state) == ["total"] and state["total"].dtype == np.float16
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    results = [runtime.run({**state, "x": x})["mul_0"] for _ in range(3)]
    for step, result in enumerate(results, start=1):
        np.testing.assert_array_equal(result, 2 * step * x)
    np.testing.assert_array_equal(state["total"], 3 * x)
    with pytest.raises(ShapeMismatchError, match=r"State 'total' must be a numpy array of type tensor<fp16, \[2, 3\]>"):
        runtime.run({"total": np.zeros((2, 3), np.float32), "x": x})


@pytest.mark.ops("coreml_update_state")
def test_coreml_update_state_kernel_writes_in_place():
    from coremltools.proto import MIL_pb2

    from modelbuild.runtime.mil.values import TensorType

    context = OpContext("coreml_update_state", ["v"], [TensorType(MIL_pb2.DataType.FLOAT32, (2,))])
    state = np.zeros(2, np.float32)
    returned = MIL_OPS.get("coreml_update_state", opset=IOS18)(context, state=state, value=np.array([1.0, 2.0], np.float32))
    np.testing.assert_array_equal(state, [1, 2])
    np.testing.assert_array_equal(returned, [1, 2])


@pytest.mark.ops("make_list", "list_read", "list_write", "list_scatter", "list_gather", "list_length")
def test_lists_grow_and_default_to_zeros():
    a, b = np.array([1, 3], np.float32), np.array([2, 4], np.float32)

    def build(a, b):  # coremltools' TestList smoke case
        ls = mb.make_list(init_length=2, elem_shape=(2,))
        initial = mb.list_read(ls=ls, index=0)
        ls = mb.list_write(ls=ls, index=0, value=a)
        ls = mb.list_write(ls=ls, index=4, value=b)  # past the end: the list grows
        ls = mb.list_scatter(ls=ls, indices=[2, 1], value=np.array([[-1, -2], [-4, -5]], np.float32))
        return initial, mb.list_read(ls=ls, index=0), mb.list_gather(ls=ls, indices=[4, 2, 3]), mb.list_length(ls=ls)

    initial, first, gathered, length = run_mil(build, {"a": a, "b": b})
    np.testing.assert_array_equal(initial, [0, 0])
    np.testing.assert_array_equal(first, a)
    np.testing.assert_array_equal(gathered, [[2, 4], [-1, -2], [0, 0]])
    assert length == 5


@pytest.mark.ops("make_list", "list_write", "list_gather", "list_length", "while_loop")
def test_a_while_loop_fills_a_list():
    update = np.array([1, 2], np.float32)

    def build(n, u):
        def body(i, n, ls, u):
            return mb.add(x=i, y=1), n, mb.list_write(ls=ls, index=i, value=mb.mul(x=u, y=mb.cast(x=i, dtype="fp32"))), u

        def keep_going(i, n, ls, u):
            return mb.less(x=mb.cast(x=i, dtype="fp32"), y=n)

        _, _, filled, _ = mb.while_loop(_cond=keep_going, _body=body,
                                        loop_vars=(0, n, mb.make_list(init_length=1, elem_shape=(2,)), u))
        return mb.list_gather(ls=filled, indices=mb.range_1d(start=0, end=mb.list_length(ls=filled), step=1))

    got = run_mil(build, {"n": np.array([3], np.float32), "u": update})
    np.testing.assert_array_equal(got, [0 * update, 1 * update, 2 * update])


@pytest.mark.ops("conv")
def test_constant_weights_are_converted_once_per_loaded_program(rng):
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    program = to_program(build_mil(lambda x: mb.conv(x=x, weight=weight), {"x": x}), fp16=True)
    (conv,) = [op for op in program.function().block.operations if op.type == "conv"]
    first = program.run({"x": x})
    prepared = conv.prepared["weight"]  # the fp16 weight as a float32 torch tensor
    second = program.run({"x": x})
    assert conv.prepared["weight"] is prepared
    assert prepared.dtype == torch.float32
    np.testing.assert_array_equal(prepared.numpy(), weight.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(first[program.outputs[0]], second[program.outputs[0]])


@pytest.mark.ops("conv")
def test_a_weight_fed_at_run_time_is_converted_at_every_run(rng):
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    weights = [rng.standard_normal((4, 3, 3, 3)).astype(np.float32) for _ in range(2)]
    program = to_program(build_mil(lambda x, w: mb.conv(x=x, weight=w), {"x": x, "w": weights[0]}))
    for weight in weights:
        got = program.run({"x": x, "w": weight})[program.outputs[0]]
        expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight))
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.ops("add")
def test_values_no_later_op_reads_are_freed_during_a_run():
    x = np.zeros(1 << 20, np.float32)  # 4 MB; eight adds would hold 32 MB if nothing were freed

    def build(x):
        for _ in range(8):
            x = mb.add(x=x, y=1.0)
        return x

    program = to_program(build_mil(build, {"x": x}))
    tracemalloc.start()
    try:
        outputs = program.run({"x": x})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(outputs[program.outputs[0]], x + 8)
    assert peak < 3 * x.nbytes
    assert len(program.run({"x": x}, intermediate=True)) == 8  # asked for, every value is kept


@pytest.mark.ops("while_loop", "mul", "add")
def test_a_value_a_loop_body_reads_lives_until_the_loop_has_run(rng):
    x = rng.uniform(0, 1, (2, 3)).astype(np.float32)

    def build(x):
        step = mb.mul(x=x, y=2.0)
        start = mb.add(x=step, y=1.0)  # the last read of step outside the loop body

        def body(a, i):
            return mb.add(x=a, y=step), mb.add(x=i, y=np.int32(1))

        looped, _ = mb.while_loop(_cond=lambda a, i: mb.less(x=i, y=np.int32(3)), _body=body,
                                  loop_vars=(start, np.int32(0)))
        return looped

    got = run_mil(build, {"x": x})
    np.testing.assert_allclose(got, (2 * x + 1) + 3 * (2 * x), rtol=1e-6)
