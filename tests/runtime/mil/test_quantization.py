"""iOS17 quantize / dequantize against torch's quantized tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modelbuild.runtime.mil.testing import mb, run_mil


@pytest.mark.ops("quantize", "dequantize")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_quantize_per_tensor_and_per_channel(rng):
    x = rng.uniform(-3, 3, (2, 3, 4)).astype(np.float32)
    x[0, 0, :2] = [0.25, 0.75]  # exact halves of the scale: rounding goes to even
    scales = np.array([0.5, 0.02, 0.1], np.float32)
    zeros = np.array([0, 10, -5], np.int8)
    per_tensor, per_channel, round_trip = run_mil(
        lambda x: (
            mb.cast(x=mb.quantize(input=x, scale=np.float32(0.5), zero_point=np.uint8(128), output_dtype="uint8"),
                    dtype="int32"),
            mb.cast(x=mb.quantize(input=x, scale=scales, zero_point=zeros, axis=1, output_dtype="int8"), dtype="int32"),
            mb.dequantize(input=mb.quantize(input=x, scale=scales, zero_point=zeros, axis=1, output_dtype="int8"),
                          scale=scales, zero_point=zeros, axis=1),
        ),
        {"x": x},
        target="iOS17",
    )
    t = torch.from_numpy(x)
    expected = torch.quantize_per_tensor(t, 0.5, 128, torch.quint8)
    np.testing.assert_array_equal(per_tensor, expected.int_repr().numpy())
    channel = torch.quantize_per_channel(t, torch.from_numpy(scales).double(), torch.from_numpy(zeros).long(), 1, torch.qint8)
    np.testing.assert_array_equal(per_channel, channel.int_repr().numpy())
    np.testing.assert_allclose(round_trip, channel.dequantize().numpy(), rtol=1e-6)
