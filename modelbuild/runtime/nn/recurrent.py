"""Recurrent layers: simpleRecurrent, gru, uniDirectionalLSTM, biDirectionalLSTM.

Inputs are [Seq, Batch, inputVectorSize, 1, 1] with optional initial states
[1, Batch, outputVectorSize, 1, 1]; outputs are the output sequence (every step if
sequenceOutput, else the last) and the final states. Equations, gate order and
the clip of pre-activations to [-50, 50] follow NeuralNetwork.proto. With
reverseInput the steps run right to left and the output sequence lists them in
that order; biDirectionalLSTM puts its backward outputs back in input order.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from modelbuild.runtime.nn.activation import recurrent_nonlinearity
from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, f32

CLIP = np.float32(50.0)


def _sequence(layer: Layer, x: np.ndarray, size: int) -> np.ndarray:
    layer.need_rank(x, 3)
    seq = f32(x).reshape(x.shape[0], x.shape[1], -1)
    if seq.shape[2] != size:
        raise layer.mismatch(f"input vector size (input shape {list(x.shape)})", seq.shape[2], f"inputVectorSize = {size}")
    return seq


def _state(layer: Layer, initial: tuple[np.ndarray, ...], index: int, batch: int, hidden: int) -> np.ndarray:
    if len(initial) <= index:
        return np.zeros((batch, hidden), dtype=np.float32)
    state = f32(initial[index])
    if state.size != batch * hidden:
        raise layer.mismatch(f"initial state {index + 1} shape", list(state.shape),
                             f"[1, batch {batch}, {hidden}, 1, 1] (the input sequence has batch {batch})")
    return state.reshape(batch, hidden)


def _as_blob(values: np.ndarray) -> np.ndarray:
    """[Seq, Batch, H] -> [Seq, Batch, H, 1, 1]."""
    return values.reshape(values.shape + (1, 1))


def _gate(x_t: np.ndarray, y_prev: np.ndarray, w: np.ndarray, r: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    return np.clip(x_t @ w.T + y_prev @ r.T + b, -CLIP, CLIP)


def _outputs(steps: list[np.ndarray], sequence_output: bool) -> np.ndarray:
    stacked = np.stack(steps) if sequence_output else steps[-1][None]
    return _as_blob(f32(stacked))


@NN_LAYERS.register("simpleRecurrent")
def simple_recurrent(layer: Layer, x: np.ndarray, *initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y_t = f(clip(W x_t + R y_(t-1) + b))."""
    p = layer.params
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    seq = _sequence(layer, x, n_in)
    w = layer.weights("weightMatrix", (n_out, n_in))
    r = layer.weights("recursionMatrix", (n_out, n_out))
    b = layer.weights("biasVector", (n_out,)) if p.hasBiasVector else 0.0
    y = _state(layer, initial, 0, seq.shape[1], n_out)
    order = range(len(seq) - 1, -1, -1) if p.reverseInput else range(len(seq))
    steps = []
    for t in order:
        y = recurrent_nonlinearity(p.activation, _gate(seq[t], y, w, r, b), repr(layer))
        steps.append(y)
    return _outputs(steps, p.sequenceOutput), _as_blob(y[None])


@NN_LAYERS.register("gru")
def gru(layer: Layer, x: np.ndarray, *initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GRU with the reset gate applied to y_(t-1) before R_o (NeuralNetwork.proto's form)."""
    p = layer.params
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    seq = _sequence(layer, x, n_in)
    f_act, g_act = (list(p.activations) + [None, None])[:2]
    weights = {g: (layer.weights(f"{g}GateWeightMatrix", (n_out, n_in)), layer.weights(f"{g}GateRecursionMatrix", (n_out, n_out)),
                   layer.weights(f"{g}GateBiasVector", (n_out,)) if p.hasBiasVectors else 0.0)
               for g in ("update", "reset", "output")}
    y = _state(layer, initial, 0, seq.shape[1], n_out)
    order = range(len(seq) - 1, -1, -1) if p.reverseInput else range(len(seq))
    steps = []
    for t in order:
        z = recurrent_nonlinearity(f_act, _gate(seq[t], y, *weights["update"]), repr(layer))
        r = recurrent_nonlinearity(f_act, _gate(seq[t], y, *weights["reset"]), repr(layer))
        o = recurrent_nonlinearity(g_act, _gate(seq[t], y * r, *weights["output"]), repr(layer))
        y = (1 - z) * o + z * y
        steps.append(y)
    return _outputs(steps, p.sequenceOutput), _as_blob(y[None])


def _run_lstm(layer: Layer, seq: np.ndarray, activations: list[Any], params: Any, weights: Any,
              h: np.ndarray, c: np.ndarray, reverse: bool, n_in: int, n_out: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    f_act, g_act, h_act = activations
    mats = {}
    for gate, name in (("i", "inputGate"), ("f", "forgetGate"), ("z", "blockInput"), ("o", "outputGate")):
        w = layer.weights(f"{name}WeightMatrix", (n_out, n_in), params=weights)
        r = layer.weights(f"{name}RecursionMatrix", (n_out, n_out), params=weights)
        b = layer.weights(f"{name}BiasVector", (n_out,), params=weights) if params.hasBiasVectors else np.zeros(n_out, np.float32)
        mats[gate] = (w, r, b + (1.0 if gate == "f" and params.forgetBias else 0.0))
    peep = {g: layer.weights(f"{name}PeepholeVector", (n_out,), params=weights) if params.hasPeepholeVectors else 0.0
            for g, name in (("i", "inputGate"), ("f", "forgetGate"), ("o", "outputGate"))}
    threshold = np.float32(params.cellClipThreshold or 50.0)
    order = range(len(seq) - 1, -1, -1) if reverse else range(len(seq))
    steps = []
    for t in order:
        i = recurrent_nonlinearity(f_act, _gate(seq[t], h, *mats["i"]) + peep["i"] * c, repr(layer))
        z = recurrent_nonlinearity(g_act, _gate(seq[t], h, *mats["z"]), repr(layer))
        if params.coupledInputAndForgetGate:
            c = c * (1 - i) + i * z
        else:
            f = recurrent_nonlinearity(f_act, _gate(seq[t], h, *mats["f"]) + peep["f"] * c, repr(layer))
            c = c * f + i * z
        c = np.clip(c, -threshold, threshold)
        o = recurrent_nonlinearity(f_act, _gate(seq[t], h, *mats["o"]) + peep["o"] * c, repr(layer))
        h = f32(recurrent_nonlinearity(h_act, c, repr(layer)) * o)
        steps.append(h)
    return steps, h, c  # in the order computed (right to left if reverse)


@NN_LAYERS.register("uniDirectionalLSTM")
def uni_directional_lstm(layer: Layer, x: np.ndarray, *initial: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSTM over the sequence (right to left if reverseInput, y in that order, like simpleRecurrent and
    gru, as coremltools' reverse lstm tests expect); outputs y, h_final, c_final."""
    p = layer.params
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    seq = _sequence(layer, x, n_in)
    h, c = _state(layer, initial, 0, seq.shape[1], n_out), _state(layer, initial, 1, seq.shape[1], n_out)
    steps, h, c = _run_lstm(layer, seq, list(p.activations), p.params, p.weightParams, h, c, p.reverseInput, n_in, n_out)
    y = _outputs(steps, p.params.sequenceOutput) if p.params.sequenceOutput else _as_blob(h[None])
    return y, _as_blob(h[None]), _as_blob(c[None])


@NN_LAYERS.register("biDirectionalLSTM")
def bi_directional_lstm(layer: Layer, x: np.ndarray, *initial: np.ndarray) -> tuple[np.ndarray, ...]:
    """Forward and backward LSTMs; y concatenates [forward, backward] per position."""
    p = layer.params
    n_in, n_out = int(p.inputVectorSize), int(p.outputVectorSize)
    seq = _sequence(layer, x, n_in)
    batch = seq.shape[1]
    hf, cf = _state(layer, initial, 0, batch, n_out), _state(layer, initial, 1, batch, n_out)
    hb, cb = _state(layer, initial, 2, batch, n_out), _state(layer, initial, 3, batch, n_out)
    forward, hf, cf = _run_lstm(layer, seq, list(p.activationsForwardLSTM), p.params, p.weightParams[0], hf, cf, False, n_in, n_out)
    backward, hb, cb = _run_lstm(layer, seq, list(p.activationsBackwardLSTM), p.params, p.weightParams[1], hb, cb, True, n_in, n_out)
    if p.params.sequenceOutput:  # the backward outputs back in input order, next to the forward ones
        y = np.concatenate([np.stack(forward), np.stack(backward[::-1])], axis=-1)
    else:
        y = np.concatenate([hf, hb], axis=-1)[None]
    return _as_blob(f32(y)), _as_blob(hf[None]), _as_blob(cf[None]), _as_blob(hb[None]), _as_blob(cb[None])
