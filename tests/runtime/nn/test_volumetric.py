"""convolution3d, pooling3d, globalPooling3d and slidingWindows against torch/numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


@pytest.mark.ops("convolution3d")
@pytest.mark.parametrize("mode, pads, stride, groups", [
    ("valid", (0,) * 6, (1, 1, 1), 1),
    ("custom", (1, 0, 2, 1, 0, 1), (1, 2, 1), 1),
    ("same", None, (2, 2, 2), 2),
])
def test_convolution3d(run_layer, rng, mode, pads, stride, groups):
    x = rng.standard_normal((1, 4, 5, 6, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4 // groups, 3, 2, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    custom = dict(zip(["padding_front", "padding_back", "padding_top", "padding_bottom", "padding_left", "padding_right"],
                      pads or (0,) * 6))
    y = run_layer(lambda bl: bl.add_convolution3d("c3", 4, 6, 3, 2, 3, w, b, True, groups=groups, stride_depth=stride[0],
                                                  stride_height=stride[1], stride_width=stride[2], padding_mode=mode,
                                                  input_name="x", output_name="y", **custom), {"x": x})
    if mode == "same":  # TensorFlow SAME: output = ceil(input / stride), extra at the end
        pads = []
        for size, k, s in zip(x.shape[2:], w.shape[2:], stride):
            total = max(0, (-(-size // s) - 1) * s + k - size)
            pads += [total // 2, total - total // 2]
    front, back, top, bottom, left, right = pads
    expected = F.conv3d(F.pad(_t(x), (left, right, top, bottom, front, back)), _t(w), _t(b), stride, 0, 1, groups).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.ops("pooling3d")
@pytest.mark.parametrize("kind, exclude", [("MAX", False), ("AVERAGE", False), ("AVERAGE", True)])
def test_pooling3d_custom_padding(run_layer, rng, kind, exclude):
    x = rng.standard_normal((1, 2, 5, 6, 6)).astype(np.float32)
    y = run_layer(lambda b: b.add_pooling3d("p", "x", "y", kind, 3, 3, 3, 2, 2, 2, padding_mode="custom",
                                            custom_padding_front=1, custom_padding_back=1, custom_padding_top=1,
                                            custom_padding_bottom=1, custom_padding_left=1, custom_padding_right=1,
                                            average_pooling_count_excludes_padding=exclude), {"x": x})
    if kind == "MAX":
        expected = F.max_pool3d(_t(x), 3, 2, padding=1).numpy()
    else:
        expected = F.avg_pool3d(_t(x), 3, 2, padding=1, count_include_pad=not exclude).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.ops("globalPooling3d")
@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
def test_global_pooling3d(run_layer, rng, kind):
    x = rng.standard_normal((2, 3, 4, 5, 6)).astype(np.float32)
    y = run_layer(lambda b: b.add_global_pooling3d("g", "x", "y", kind), {"x": x})
    reduce = np.max if kind == "MAX" else np.mean
    np.testing.assert_allclose(y, reduce(x, axis=(2, 3, 4), keepdims=True), rtol=1e-5)


@pytest.mark.ops("slidingWindows")
@pytest.mark.parametrize("axis, size, step", [(1, 3, 2), (-1, 2, 1), (0, 4, 3)])
def test_sliding_windows(run_layer, rng, axis, size, step):
    x = rng.standard_normal((7, 6, 5)).astype(np.float32)
    y = run_layer(lambda b: b.add_sliding_windows("s", "x", "y", axis=axis, window_size=size, step=step), {"x": x})
    a = axis % 3
    count = (x.shape[a] - size) // step + 1
    windows = [np.take(x, np.arange(i * step, i * step + size), axis=a) for i in range(count)]
    np.testing.assert_array_equal(y, np.stack(windows, axis=a))
