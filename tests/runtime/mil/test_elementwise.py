"""Elementwise MIL ops against torch oracles: broadcasting, dtypes, epsilons, shape errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from coremltools.converters.mil.mil import get_new_symbol
from coremltools.proto import MIL_pb2

from modelbuild.runtime.mil import MIL_OPS, OpContext
from modelbuild.runtime.mil.opsets import IOS15
from modelbuild.runtime.mil.testing import mb, run_mil, to_program
from modelbuild.runtime.mil.values import TensorType

from modelbuild.runtime.registry import ShapeMismatchError

BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "real_div": torch.true_divide,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "pow": torch.pow,
}
COMPARE = {
    "equal": torch.eq, "not_equal": torch.ne, "less": torch.lt,
    "less_equal": torch.le, "greater": torch.gt, "greater_equal": torch.ge,
}
LOGICAL = {"logical_and": torch.logical_and, "logical_or": torch.logical_or, "logical_xor": torch.logical_xor}


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.ops(*BINARY)
@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("y_shape", [(1, 4), (5, 1, 1, 4), (1,)])
def test_binary_broadcasts_like_numpy(name, y_shape, rng):
    x = rng.uniform(0.5, 2, (2, 3, 1)).astype(np.float32)
    y = rng.uniform(0.5, 2, y_shape).astype(np.float32)
    op = getattr(mb, name)
    got, with_scalar = run_mil(lambda x, y: (op(x=x, y=y), op(x=x, y=np.float32(1.5))), {"x": x, "y": y})
    np.testing.assert_allclose(got, BINARY[name](_t(x), _t(y)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(with_scalar, BINARY[name](_t(x), torch.tensor(1.5)).numpy(), rtol=1e-6)


@pytest.mark.ops("floor_div", "mod")
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_floor_div_and_mod_round_toward_minus_infinity(dtype, rng):
    x = rng.integers(-20, 20, (4, 5)).astype(dtype)
    y = np.array([3, -4, 7, -2, 5], dtype)
    q, r = run_mil(lambda x, y: (mb.floor_div(x=x, y=y), mb.mod(x=x, y=y)), {"x": x, "y": y})
    np.testing.assert_array_equal(q, torch.floor_divide(_t(x), _t(y)).numpy())
    np.testing.assert_array_equal(r, torch.remainder(_t(x), _t(y)).numpy())
    assert q.dtype == dtype


@pytest.mark.ops(*COMPARE)
@pytest.mark.parametrize("name", list(COMPARE))
def test_comparisons_give_bool(name, rng):
    x = rng.integers(0, 3, (3, 4)).astype(np.float32)
    y = rng.integers(0, 3, (4,)).astype(np.float32)
    got = run_mil(lambda x, y: getattr(mb, name)(x=x, y=y), {"x": x, "y": y})
    np.testing.assert_array_equal(got, COMPARE[name](_t(x), _t(y)).numpy())


@pytest.mark.ops(*LOGICAL, "logical_not")
@pytest.mark.parametrize("name", list(LOGICAL))
def test_logical_ops(name, rng):
    x = rng.integers(0, 2, (2, 5)).astype(bool)
    y = rng.integers(0, 2, (5,)).astype(bool)
    got, negated = run_mil(lambda x, y: (getattr(mb, name)(x=x, y=y), mb.logical_not(x=x)), {"x": x, "y": y})
    np.testing.assert_array_equal(got, LOGICAL[name](_t(x), _t(y)).numpy())
    np.testing.assert_array_equal(negated, torch.logical_not(_t(x)).numpy())


@pytest.mark.ops("add")
def test_binary_shape_mismatch_names_the_op_and_shapes():
    @mb.program(input_specs=[mb.TensorSpec(shape=(get_new_symbol(), 3))])
    def program(x):
        return mb.add(x=x, y=np.ones((2, 3), np.float32), name="bad_add")

    with pytest.warns(UserWarning, match="flexible"):
        runtime_program = to_program(program)
    np.testing.assert_array_equal(runtime_program.run({"x": np.ones((2, 3), np.float32)})["bad_add"], 2.0)
    with pytest.raises(
        ShapeMismatchError, match=r"add op 'bad_add' \(tensor<fp32, \[2, 3\]>\).*x \(4, 3\), y \(2, 3\)"
    ):
        runtime_program.run({"x": np.ones((4, 3), np.float32)})


def _math_erf(t: torch.Tensor) -> torch.Tensor:
    """erf from Python's math module (the kernel uses torch's)."""
    return torch.from_numpy(np.vectorize(math.erf)(t.numpy()))


UNARY = {
    "abs": torch.abs, "acos": torch.acos, "asin": torch.asin, "atan": torch.atan, "atanh": torch.atanh,
    "ceil": torch.ceil, "cos": torch.cos, "cosh": torch.cosh, "erf": lambda t: _math_erf(t), "exp": torch.exp,
    "exp2": torch.exp2, "floor": torch.floor, "round": torch.round, "sign": torch.sign, "sin": torch.sin,
    "sinh": torch.sinh, "sqrt": torch.sqrt, "square": torch.square, "tan": torch.tan, "tanh": torch.tanh,
}
NEEDS_UNIT_RANGE = {"acos", "asin", "atanh"}
NEEDS_POSITIVE = {"sqrt"}


@pytest.mark.ops(*UNARY)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name, rng):
    if name in NEEDS_UNIT_RANGE:
        x = rng.uniform(-0.9, 0.9, (3, 7))
    elif name in NEEDS_POSITIVE:
        x = rng.uniform(0.1, 4, (3, 7))
    else:
        x = rng.uniform(-3, 3, (3, 7))
    x = x.astype(np.float32)
    if name == "round":
        x[0, :3] = [0.5, 1.5, -2.5]  # ties go to even
    got = run_mil(lambda x: getattr(mb, name)(x=x), {"x": x})
    np.testing.assert_allclose(got, UNARY[name](_t(x)).numpy(), rtol=2e-6, atol=1e-6)


@pytest.mark.ops("log", "rsqrt", "inverse")
def test_epsilon_is_added_before_log_rsqrt_inverse(rng):
    x = rng.uniform(0.01, 3, (2, 6)).astype(np.float32)
    eps = np.float32(0.5)
    log, rsqrt, inverse = run_mil(
        lambda x: (mb.log(x=x, epsilon=eps), mb.rsqrt(x=x, epsilon=eps), mb.inverse(x=x, epsilon=eps)), {"x": x}
    )
    t = _t(x) + 0.5
    np.testing.assert_allclose(log, torch.log(t).numpy(), rtol=1e-6)
    np.testing.assert_allclose(rsqrt, torch.rsqrt(t).numpy(), rtol=1e-6)
    np.testing.assert_allclose(inverse, torch.reciprocal(t).numpy(), rtol=1e-6)


@pytest.mark.ops("clip", "threshold")
def test_clip_and_threshold(rng):
    x = rng.uniform(-3, 3, (4, 4)).astype(np.float32)
    clipped, thresholded = run_mil(
        lambda x: (mb.clip(x=x, alpha=-1.0, beta=0.5), mb.threshold(x=x, alpha=0.25)), {"x": x}
    )
    np.testing.assert_array_equal(clipped, torch.clamp(_t(x), -1.0, 0.5).numpy())
    np.testing.assert_array_equal(thresholded, torch.clamp(_t(x), min=0.25).numpy())


@pytest.mark.ops("cast")
@pytest.mark.parametrize("dtype, torch_dtype", [("int32", torch.int32), ("fp16", torch.float16), ("bool", torch.bool)])
def test_cast(dtype, torch_dtype, rng):
    x = rng.uniform(-5, 5, (3, 5)).astype(np.float32)
    x[0, 0] = 0.0
    got = run_mil(lambda x: mb.cast(x=x, dtype=dtype), {"x": x})
    np.testing.assert_array_equal(got, _t(x).to(torch_dtype).numpy())


@pytest.mark.ops("select")
def test_select_broadcasts_all_three(rng):
    cond = rng.integers(0, 2, (3, 1)).astype(bool)
    a = rng.random((1, 4)).astype(np.float32)
    b = rng.random((3, 4)).astype(np.float32)
    got = run_mil(lambda c, a, b: mb.select(cond=c, a=a, b=b), {"c": cond, "a": a, "b": b})
    np.testing.assert_array_equal(got, torch.where(_t(cond), _t(a), _t(b)).numpy())


@pytest.mark.ops("identity", "const")
def test_identity_and_const(rng):
    x = rng.random((2, 3)).astype(np.float32)
    w = rng.random((2, 3)).astype(np.float32)
    got = run_mil(lambda x: mb.add(x=mb.identity(x=x), y=mb.const(val=w)), {"x": x})
    np.testing.assert_allclose(got, (_t(x) + _t(w)).numpy())


@pytest.mark.ops("add", "mul")
def test_fp16_program_rounds_every_op_to_fp16(rng):
    x = rng.uniform(0, 1, (64,)).astype(np.float32)
    got = run_mil(lambda x: mb.mul(x=mb.add(x=x, y=1.0 / 3.0), y=3.0), {"x": x}, fp16=True)
    # oracle: torch in half precision, one rounding per op
    expected = ((_t(x).half() + torch.tensor(1.0 / 3.0).half()) * 3.0).float().numpy()
    np.testing.assert_array_equal(got.astype(np.float32), expected)
    assert not np.array_equal(got.astype(np.float32), (x + 1.0 / 3.0) * 3.0)


def _fp16_context(op_type: str) -> OpContext:
    return OpContext(op_type, ["z"], [TensorType(MIL_pb2.DataType.FLOAT16, None)])


def _random_fp16_bits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Every kind of fp16 value: normal, subnormal, zeros, inf and NaN."""
    return rng.integers(0, 2**16, shape, dtype=np.uint16).view(np.float16)


NUMPY_FP16 = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.true_divide,
              "maximum": np.maximum, "minimum": np.minimum}


@pytest.mark.ops(*NUMPY_FP16)
@pytest.mark.parametrize("name", list(NUMPY_FP16))
def test_large_fp16_operands_give_numpys_float16_results(name, rng):
    x = _random_fp16_bits(rng, (4, 64, 128))  # large enough to run on torch
    y = _random_fp16_bits(rng, (4, 64, 128))
    scalar = np.array(rng.standard_normal(), np.float16)
    scalar.setflags(write=False)  # constants may be read-only
    kernel = MIL_OPS.get(name, opset=IOS15)
    for a, b in ((x, y), (x, scalar), (scalar, x[:, ::-1])):
        with np.errstate(all="ignore"):
            expected = NUMPY_FP16[name](a, b)
        got = kernel(_fp16_context(name), x=a, y=b)
        assert got.dtype == np.float16 and got.shape == expected.shape
        nan = np.isnan(expected)
        np.testing.assert_array_equal(np.isnan(got), nan)
        np.testing.assert_array_equal(got[~nan].view(np.uint16), expected[~nan].view(np.uint16))
