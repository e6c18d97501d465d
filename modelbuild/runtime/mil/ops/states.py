"""iOS18 states: read_state copies a state's tensor; coreml_update_state and write_state overwrite it in place."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..kernel import MIL_OPS, OpContext
from ..opsets import IOS18


@MIL_OPS.register("read_state", since=IOS18)
def read_state(op: OpContext, *, input: np.ndarray) -> np.ndarray:
    return np.array(input, copy=True)


@MIL_OPS.register("coreml_update_state", since=IOS18)
def coreml_update_state(op: OpContext, *, state: np.ndarray, value: Any) -> np.ndarray:
    if np.shape(value) != state.shape:
        raise op.shape_error("the value must have the state's shape", state=state, value=value)
    state[...] = value
    return np.array(value, copy=True)


@MIL_OPS.register("write_state", since=IOS18)
def write_state(op: OpContext, *, input: np.ndarray, data: Any) -> tuple[()]:
    """What coremltools serialises coreml_update_state to: the write, without an output."""
    coreml_update_state(op, state=input, value=data)
    return ()
