"""casting.astype: numpy's float16 <-> float32 conversion, bit for bit, through torch for large arrays."""
from __future__ import annotations

import numpy as np

from modelbuild.runtime.mil.casting import astype


def _assert_same_values(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal bits, except that two NaNs may differ in payload."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    unsigned = np.uint16 if expected.dtype == np.float16 else np.uint32
    np.testing.assert_array_equal(got[~nan].view(unsigned), expected[~nan].view(unsigned))


def test_every_fp16_value_widens_exactly():
    every = np.arange(2**16, dtype=np.uint16).view(np.float16)
    _assert_same_values(astype(every, np.float32), every.astype(np.float32))


def test_fp32_rounds_to_fp16_as_numpy_does_at_every_rounding_boundary():
    # every sign/exponent/10-bit-mantissa prefix, with the 13 bits fp16 drops just below, at and
    # above the halfway point: ties to even, subnormals, overflow to inf, inf and NaN
    prefixes = np.arange(2**19, dtype=np.uint32) << 13
    tails = np.array([0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF], np.uint32)
    values = (prefixes[:, None] | tails).reshape(-1).view(np.float32)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    _assert_same_values(astype(values, np.float16), expected)


def test_small_read_only_strided_and_other_dtype_arrays_convert_like_numpy():
    rng = np.random.default_rng(0)
    large = rng.standard_normal((300, 200)).astype(np.float32)
    read_only = large.copy()
    read_only.setflags(write=False)
    for array in (large[:3, :4], read_only, large.T, large[::-1], large.astype(np.float64)):
        _assert_same_values(astype(array, np.float16), array.astype(np.float16))
    assert astype(large, np.float32) is large
    assert astype(3.5, np.float16).dtype == np.float16
