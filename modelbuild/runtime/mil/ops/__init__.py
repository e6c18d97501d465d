"""The ML Program kernels; importing this package registers them all in `MIL_OPS`."""
from __future__ import annotations

from . import (activation, classify, control_flow, constexpr, conv, elementwise, gather_scatter,  # noqa: F401
               image, linear, normalization, pool, quantization, recurrent, reduction, reshaping, states, tensor_ops)
