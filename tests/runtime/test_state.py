"""Stateful (iOS18) models through load(): make_state(), predict(inputs, state=...) and ModelState."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modelbuild.runtime import InputError, ModelRuntimeError, load
from modelbuild.runtime.mil.testing import mb, to_mlmodel


class _Accumulator(torch.nn.Module):
    """A decaying sum kept in a registered buffer: each call halves it, adds x and returns 2 * sum + x."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("total", torch.zeros(2, 3, dtype=torch.float16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.total.mul_(0.5).add_(x)
        return self.total * 2 + x


@pytest.fixture(scope="module")
def accumulator_package(ct, tmp_path_factory):
    """The accumulator converted with a ct.StateType for its buffer (iOS18, fp16), saved as an .mlpackage."""
    traced = torch.jit.trace(_Accumulator().eval(), torch.rand(2, 3), check_trace=False)  # the buffer moves
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=(2, 3), dtype=np.float16)],
        outputs=[ct.TensorType(name="y")],
        states=[ct.StateType(wrapped_type=ct.TensorType(shape=(2, 3), dtype=np.float16), name="total")],
        minimum_deployment_target=ct.target.iOS18,
    )
    path = tmp_path_factory.mktemp("stateful") / "accumulator.mlpackage"
    mlmodel.save(str(path))
    return path


@pytest.mark.ops("read_state", "coreml_update_state")
def test_a_converted_torch_buffer_keeps_its_value_across_predictions(accumulator_package):
    model = load(accumulator_package, backend="reference")
    assert list(model.states) == ["total"] and model.input_names == ["x"]
    reference = _Accumulator().eval()
    state = model.make_state()
    np.testing.assert_array_equal(state.read_state("total"), np.zeros((2, 3), np.float16))
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.random((2, 3)).astype(np.float16)
        y = model.predict({"x": x}, state=state)["y"]
        with torch.no_grad():
            expected = reference(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(y, expected, atol=2e-3, rtol=2e-3)
        np.testing.assert_allclose(state.read_state("total"), reference.total.numpy(), atol=2e-3, rtol=2e-3)


def test_states_are_independent_and_writable(accumulator_package):
    model = load(accumulator_package, backend="reference")
    first, second = model.make_state(), model.make_state()
    ones = np.ones((2, 3), np.float16)
    model.predict({"x": ones}, state=first)
    np.testing.assert_array_equal(first.read_state("total"), ones)
    np.testing.assert_array_equal(second.read_state("total"), np.zeros((2, 3)))
    second.write_state("total", np.full((2, 3), 4.0, np.float32))
    y = model.predict({"x": ones}, state=second)["y"]
    np.testing.assert_array_equal(y, 2 * (4.0 / 2 + 1) + 1)  # total 4 -> 3; y = 2 * 3 + 1
    first.read_state("total")[...] = 9  # a copy: the state does not change
    np.testing.assert_array_equal(first.read_state("total"), ones)


def test_state_misuse_is_refused(accumulator_package, make_builder):
    model = load(accumulator_package, backend="reference")
    x = {"x": np.ones((2, 3), np.float16)}
    with pytest.raises(InputError, match=r"The model is stateful \(state 'total'\); pass state=model.make_state\(\)"):
        model.predict(x)
    other = load(accumulator_package, backend="reference").make_state()
    with pytest.raises(InputError, match="The state was made by another model's make_state"):
        model.predict(x, state=other)
    state = model.make_state()
    with pytest.raises(InputError, match=r"The model has no state 'cache'; its states are: 'total'"):
        state.read_state("cache")
    with pytest.raises(InputError, match=r"State 'total' has shape \[2, 3\]; write_state\(\) was given shape \[3\]"):
        state.write_state("total", np.zeros(3))
    builder = make_builder({"x": (2,)}, ["y"])
    builder.add_activation("relu", "RELU", "x", "y")
    stateless = load(builder.spec, backend="reference")
    with pytest.raises(ModelRuntimeError, match="The model declares no state"):
        stateless.make_state()
    with pytest.raises(InputError, match="The model declares no state, so predict"):
        stateless.predict({"x": np.zeros(2, np.float32)}, state=state)


@pytest.mark.ops("read_state", "coreml_update_state")
def test_chained_updates_of_three_states_accumulate_over_calls(ct):
    """coremltools' TestCoreMLUpdateState.test_coreml_update_stress (xfail on x86_64, so never run here):
    ten increments of each state per prediction give 10, then 20."""
    from coremltools.converters.mil.mil import types

    shape = (2, 3)

    @mb.program(input_specs=[mb.StateTensorSpec(shape, dtype=types.fp16) for _ in range(3)], opset_version=ct.target.iOS18)
    def program(a, b, c):
        values = [mb.read_state(input=s) for s in (a, b, c)]
        for _ in range(10):
            values = [mb.coreml_update_state(state=s, value=mb.add(x=v, y=np.float16(1)))
                      for s, v in zip((a, b, c), values)]
        return tuple(mb.read_state(input=s) for s in (a, b, c))

    model = load(to_mlmodel(program, target="iOS18"), backend="reference")
    state = model.make_state()
    for expected in (10, 20):
        outputs = model.predict({}, state=state)
        assert len(outputs) == 3
        for value in outputs.values():
            np.testing.assert_array_equal(value, np.full(shape, expected, np.float16))
