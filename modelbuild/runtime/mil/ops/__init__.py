"""The ML Program kernels; importing this package registers them all in `MIL_OPS`."""
from __future__ import annotations

from . import (  # noqa: F401
    activation, classify, constexpr, control_flow, conv, elementwise, gather_scatter, image, linear,
    nms, normalization, pool, quantization, random, recurrent, reduction, reshaping, sampling, states, tensor_ops,
)
