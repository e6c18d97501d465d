"""MIL recurrent layers: rnn, gru, lstm (coremltools `ops/defs/iOS15..iOS18/recurrent.py`).

x is (seq, batch, input); weights are (gates * H, input) and (gates * H, H) in
MIL's gate order: LSTM [input, forget, output, cell], GRU [reset, output (new),
update]. Computed step by step in fp32.

direction "reverse" reads the sequence backwards and emits the outputs in the
order it computed them; "bidirectional" (LSTM) concatenates a forward pass and a
backward pass whose outputs are put back in input time order (as PyTorch does).
Without output_sequence the sequence output is the last step, shape (1, b, D*H).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..kernel import MIL_OPS, OpContext

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "tanh": np.tanh,
    "scaled_tanh": np.tanh,  # alpha = beta = 1, the defaults
    "relu": lambda v: np.maximum(v, 0),
    "hard_sigmoid": lambda v: np.clip(0.2 * v + 0.5, 0, 1),
    "linear": lambda v: v,
}


def activation_function(op: OpContext, name: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        return ACTIVATIONS[str(name)]
    except KeyError:
        raise op.value_error(f"unknown activation {name!r}; accepted: {', '.join(ACTIVATIONS)}") from None


def _f32(value: Any, size: int | None = None) -> np.ndarray:
    if value is None:
        return np.zeros(size, np.float32)
    return np.asarray(value, np.float32)


def _check(
    op: OpContext, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, gates: int,
    directions: int = 1,
) -> int:
    hidden = w_hh.shape[-1]
    if (x.ndim != 3 or w_ih.shape != (gates * hidden, x.shape[2]) or w_hh.shape != (gates * hidden, hidden)
            or h.ndim != 2 or h.shape[1] != directions * hidden or not (h.shape[0] == 1 or h.shape[0] >= x.shape[1])):
        raise op.shape_error(
            f"expected x (seq, batch, I), initial state (batch, {directions}*H), weights ({gates}*H, I) and "
            f"({gates}*H, H)", x=x, initial_h=h, weight_ih=w_ih, weight_hh=w_hh,
        )
    return hidden


def initial_state(state: np.ndarray, batch: int) -> np.ndarray:
    """The (batch, width) initial state. One row is broadcast; extra rows are ignored, as Core ML
    runs coremltools' packed-sequence LSTMs whose zero state has the sequence length as batch."""
    return np.broadcast_to(state, (batch, state.shape[1])) if state.shape[0] == 1 else state[:batch]


def _order(length: int, reverse: bool) -> list[int]:
    return list(range(length - 1, -1, -1)) if reverse else list(range(length))


def _sequence_output(steps: list[np.ndarray], output_sequence: Any) -> np.ndarray:
    return np.stack(steps) if bool(output_sequence) else steps[-1][None]


@MIL_OPS.register("rnn")
def rnn(
    op: OpContext, *, x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias: Any = None, direction: str = "forward", output_sequence: Any = False, activation: str = "tanh",
) -> tuple[np.ndarray, np.ndarray]:
    x, h, w_ih, w_hh = (_f32(v) for v in (x, initial_h, weight_ih, weight_hh))
    hidden = _check(op, x, h, w_ih, w_hh, 1)
    h = initial_state(h, x.shape[1])
    act, b = activation_function(op, activation), _f32(bias, hidden)
    steps = []
    for t in _order(x.shape[0], direction == "reverse"):
        h = act(x[t] @ w_ih.T + h @ w_hh.T + b)
        steps.append(h)
    return _sequence_output(steps, output_sequence), h


@MIL_OPS.register("gru")
def gru(
    op: OpContext, *, x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias: Any = None, direction: str = "forward", output_sequence: Any = False,
    recurrent_activation: str = "sigmoid", activation: str = "tanh", reset_after: Any = False,
    input_bias: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """reset_after False: o = act(W_o x + R_o (r * h) + b_o); True (iOS18, PyTorch): r * (R_o h + b_ho)."""
    x, h, w_ih, w_hh = (_f32(v) for v in (x, initial_h, weight_ih, weight_hh))
    hidden = _check(op, x, h, w_ih, w_hh, 3)
    h = initial_state(h, x.shape[1])
    gate, act = activation_function(op, recurrent_activation), activation_function(op, activation)
    b_h, b_i = _f32(bias, 3 * hidden), _f32(input_bias, 3 * hidden)
    w_r, w_o, w_z = np.split(w_ih, 3)
    r_r, r_o, r_z = np.split(w_hh, 3)
    (bh_r, bh_o, bh_z), (bi_r, bi_o, bi_z) = np.split(b_h, 3), np.split(b_i, 3)
    steps = []
    for t in _order(x.shape[0], direction == "reverse"):
        xt = x[t]
        r = gate(xt @ w_r.T + h @ r_r.T + bi_r + bh_r)
        z = gate(xt @ w_z.T + h @ r_z.T + bi_z + bh_z)
        if bool(reset_after):
            o = act(xt @ w_o.T + bi_o + r * (h @ r_o.T + bh_o))
        else:
            o = act(xt @ w_o.T + (r * h) @ r_o.T + bi_o + bh_o)
        h = (1 - z) * o + z * h
        steps.append(h)
    return _sequence_output(steps, output_sequence), h


def _lstm_pass(
    x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray,
    peephole: np.ndarray, reverse: bool, gate: Callable, cell: Callable, act: Callable, clip: Any,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    p_i, p_f, p_o = np.split(peephole, 3)
    steps = []
    for t in _order(x.shape[0], reverse):
        i, f, o, z = np.split(x[t] @ w_ih.T + h @ w_hh.T + bias, 4, axis=-1)
        i, f = gate(i + c * p_i), gate(f + c * p_f)
        c = f * c + i * cell(z)
        if clip is not None:
            c = np.clip(c, -float(clip), float(clip))
        h = gate(o + c * p_o) * act(c)
        steps.append(h)
    return steps, h, c


@MIL_OPS.register("lstm")
def lstm(
    op: OpContext, *, x: np.ndarray, initial_h: np.ndarray, initial_c: np.ndarray, weight_ih: np.ndarray,
    weight_hh: np.ndarray, bias: Any = None, peephole: Any = None, weight_ih_back: Any = None,
    weight_hh_back: Any = None, bias_back: Any = None, peephole_back: Any = None, direction: str = "forward",
    output_sequence: Any = False, recurrent_activation: str = "sigmoid", cell_activation: str = "tanh",
    activation: str = "tanh", clip: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, h, c, w_ih, w_hh = (_f32(v) for v in (x, initial_h, initial_c, weight_ih, weight_hh))
    bidirectional = direction == "bidirectional"
    hidden = _check(op, x, h, w_ih, w_hh, 4, 2 if bidirectional else 1)
    if c.shape != h.shape:
        raise op.shape_error("initial_c must have initial_h's shape", initial_h=h, initial_c=c)
    h, c = initial_state(h, x.shape[1]), initial_state(c, x.shape[1])
    functions = [activation_function(op, name) for name in (recurrent_activation, cell_activation, activation)]
    forward = _lstm_pass(x, h[:, :hidden], c[:, :hidden], w_ih, w_hh, _f32(bias, 4 * hidden),
                         _f32(peephole, 3 * hidden), direction == "reverse", *functions, clip)
    if not bidirectional:
        steps, h_last, c_last = forward
        return _sequence_output(steps, output_sequence), h_last, c_last
    if weight_ih_back is None or weight_hh_back is None:
        raise op.value_error("a bidirectional lstm needs weight_ih_back and weight_hh_back")
    backward = _lstm_pass(x, h[:, hidden:], c[:, hidden:], _f32(weight_ih_back), _f32(weight_hh_back),
                          _f32(bias_back, 4 * hidden), _f32(peephole_back, 3 * hidden), True, *functions, clip)
    if bool(output_sequence):
        sequence = np.concatenate([np.stack(forward[0]), np.stack(backward[0][::-1])], axis=-1)
    else:
        sequence = np.concatenate([forward[0][-1], backward[0][-1]], axis=-1)[None]
    return (sequence, np.concatenate([forward[1], backward[1]], -1), np.concatenate([forward[2], backward[2]], -1))
