"""Compressed-weight (constexpr_*) ops: decompression formulas of their docstrings, inline and blob-stored."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from coremltools.converters.mil.mil import types

from modelbuild.runtime.mil.testing import ct, mb, run_mil

SHAPES = {"inline": (2, 3), "blob": (8, 16)}  # small constants are immediate values, big ones go to weight.bin


def _pack_lsb_first(values: np.ndarray, nbits: int) -> np.ndarray:
    """Pack unsigned nbits-wide values into uint8, least significant bit first (oracle of the iOS16 format)."""
    bits = ((values.reshape(-1, 1) >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little")


def _added(weight_builder, shape) -> np.ndarray:
    """Run x + weight for x = 0: the program's decompressed weight, through a real op."""
    zeros = np.zeros(shape, np.float32)
    return run_mil(lambda x: mb.add(x=x, y=weight_builder()), {"x": zeros}, target=TARGET[0])


TARGET = ["iOS16"]


@pytest.fixture
def ios16():
    TARGET[0] = "iOS16"


@pytest.fixture
def ios18():
    TARGET[0] = "iOS18"
    yield
    TARGET[0] = "iOS16"


@pytest.mark.ops("constexpr_affine_dequantize")
@pytest.mark.parametrize("where", list(SHAPES))
def test_affine_dequantize_per_channel(ios16, where, rng):
    shape = SHAPES[where]
    q = rng.integers(0, 255, shape).astype(np.uint8)
    zero = rng.integers(100, 150, shape[0]).astype(np.uint8)
    scale = rng.uniform(0.01, 0.1, shape[0]).astype(np.float32)
    got = _added(lambda: mb.constexpr_affine_dequantize(quantized_data=q, zero_point=zero, scale=scale, axis=0), shape)
    expected = (torch.from_numpy(q).float() - torch.from_numpy(zero).float()[:, None]) * torch.from_numpy(scale)[:, None]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6)


@pytest.mark.ops("constexpr_cast")
def test_constexpr_cast(ios16, rng):
    source = rng.standard_normal((8, 16)).astype(np.float16)
    got = _added(lambda: mb.constexpr_cast(source_val=source, output_dtype="fp32"), (8, 16))
    np.testing.assert_array_equal(got, source.astype(np.float32))


@pytest.mark.ops("constexpr_lut_to_dense")
@pytest.mark.parametrize("nbits", [1, 2, 4, 6])
def test_lut_to_dense_ios16_packed_indices(ios16, nbits, rng):
    shape = (8, 16)
    lut = rng.standard_normal(2**nbits).astype(np.float32)
    indices = rng.integers(0, 2**nbits, shape)
    packed = _pack_lsb_first(indices, nbits)
    got = _added(lambda: mb.constexpr_lut_to_dense(indices=packed, lut=lut, shape=np.uint32(shape)), shape)
    np.testing.assert_array_equal(got, lut[indices])


@pytest.mark.ops("constexpr_sparse_to_dense")
def test_sparse_to_dense_ios16_packed_mask(ios16, rng):
    shape = (8, 16)
    mask = rng.random(shape) > 0.6
    values = rng.standard_normal(int(mask.sum())).astype(np.float32)
    got = _added(lambda: mb.constexpr_sparse_to_dense(nonzero_data=values, mask=_pack_lsb_first(mask.astype(np.int64), 1),
                                                        shape=np.uint32(shape)), shape)
    expected = np.zeros(shape, np.float32)
    expected[mask] = values  # row-major order of the set mask bits
    np.testing.assert_array_equal(got, expected)


@pytest.mark.ops("constexpr_blockwise_shift_scale")
@pytest.mark.parametrize("where", list(SHAPES))
def test_blockwise_shift_scale_ios18(ios18, where, rng):
    shape = SHAPES[where]
    data = rng.integers(-8, 8, shape).astype(types.np_int4_dtype)
    blocks = (shape[0], 1) if where == "inline" else (4, 2)  # per-row, or 2x8 blocks
    scale = rng.uniform(0.1, 1, blocks).astype(np.float32)
    offset = rng.integers(-2, 2, blocks).astype(types.np_int4_dtype)
    got = _added(lambda: mb.constexpr_blockwise_shift_scale(data=data, scale=scale, offset=offset), shape)
    block = (shape[0] // blocks[0], shape[1] // blocks[1])
    expand = lambda a: np.kron(a.astype(np.float32), np.ones(block, np.float32))  # noqa: E731
    np.testing.assert_allclose(got, (data.astype(np.float32) - expand(offset)) * expand(scale), rtol=1e-6)


@pytest.mark.ops("constexpr_lut_to_dense")
def test_lut_to_dense_ios18_per_block_and_vector_palettes(ios18, rng):
    shape = (8, 16)
    indices = rng.integers(0, 4, shape).astype(types.np_uint2_dtype)
    lut = rng.standard_normal((2, 1, 4, 1)).astype(np.float32)  # one palette per half of the rows
    got = _added(lambda: mb.constexpr_lut_to_dense(indices=indices, lut=lut), shape)
    expected = np.where(np.arange(8)[:, None] < 4, lut[0, 0, indices, 0], lut[1, 0, indices, 0])
    np.testing.assert_array_equal(got, expected)

    vector_indices = rng.integers(0, 4, (8, 8)).astype(types.np_uint2_dtype)
    vectors = rng.standard_normal((1, 1, 4, 2)).astype(np.float32)  # each index selects 2 values along axis 1
    got = _added(lambda: mb.constexpr_lut_to_dense(indices=vector_indices, lut=vectors, vector_axis=1), shape)
    expected = vectors[0, 0][vector_indices.astype(np.int64)].reshape(8, 16)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.ops("constexpr_sparse_to_dense", "constexpr_lut_to_sparse", "constexpr_sparse_blockwise_shift_scale")
def test_sparse_ops_ios18(ios18, rng):
    shape = (8, 16)
    mask = (rng.random(shape) > 0.5).astype(types.np_uint1_dtype)
    count = int(mask.sum())
    values = rng.standard_normal(count).astype(np.float32)
    sparse_indices = rng.integers(0, 4, count).astype(types.np_uint2_dtype)
    lut = rng.standard_normal((1, 1, 4, 1)).astype(np.float32)
    quantized = rng.integers(-100, 100, count).astype(np.int8)
    scale = np.full((8, 1), 0.5, np.float32)

    def build(x):
        dense = mb.constexpr_sparse_to_dense(nonzero_data=values, mask=mask)
        lut_mask, lut_values = mb.constexpr_lut_to_sparse(indices_mask=mask, indices_nonzero_data=sparse_indices, lut=lut)
        q_mask, q_values = mb.constexpr_sparse_blockwise_shift_scale(data_mask=mask, nonzero_data=quantized, scale=scale)
        return (mb.add(x=x, y=dense),
                mb.add(x=x, y=mb.constexpr_sparse_to_dense(nonzero_data=lut_values, mask=lut_mask)),
                mb.add(x=x, y=mb.constexpr_sparse_to_dense(nonzero_data=q_values, mask=q_mask)))

    dense, from_lut, from_quantized = run_mil(build, {"x": np.zeros(shape, np.float32)}, target="iOS18")
    keep = mask.astype(bool)
    for got, nonzero in ((dense, values), (from_lut, lut[0, 0, sparse_indices.astype(np.int64), 0]),
                         (from_quantized, quantized.astype(np.float32) * 0.5)):
        expected = np.zeros(shape, np.float32)
        expected[keep] = nonzero
        np.testing.assert_array_equal(got, expected)


@pytest.mark.ops("constexpr_affine_dequantize", "constexpr_lut_to_dense", "constexpr_blockwise_shift_scale",
                 "constexpr_sparse_to_dense")
@pytest.mark.parametrize("target", ["iOS16", "iOS18"])
@pytest.mark.parametrize("method", ["quantize", "palettize", "prune"])
def test_models_compressed_by_coremltools_optimize(target, method, rng):
    """coremltools.optimize.coreml output runs and stays close to the uncompressed model."""
    import coremltools.optimize.coreml as cto

    from modelbuild.runtime.mil import Program

    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=getattr(ct.target, target))
    def program(x):
        return mb.conv(x=x, weight=w, pad_type="same")

    model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target),
                       compute_precision=ct.precision.FLOAT32)
    if method == "quantize":
        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0))
        compressed = cto.linear_quantize_weights(model, config)
    elif method == "palettize":
        config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(nbits=4, mode="uniform", weight_threshold=0))
        compressed = cto.palettize_weights(model, config)
    else:
        config = cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0))
        compressed = cto.prune_weights(model, config)
        w = np.where(np.abs(w) >= np.median(np.abs(w)), w, 0)  # the oracle prunes the same half
    runtime = Program.from_spec(compressed.get_spec(), compressed.weights_dir)
    constexpr_ops = {op.type for op in runtime.functions["main"].block.operations if op.type.startswith("constexpr_")}
    assert constexpr_ops, "the optimizer left no compressed weight to test"
    got = runtime.run({"x": x})
    reference = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    (name,) = got
    error = np.abs(got[name] - reference).max() / np.abs(reference).max()
    tolerance = {"quantize": 0.02, "palettize": 0.15, "prune": 1e-6}[method]
    assert error < tolerance, (constexpr_ops, error)
