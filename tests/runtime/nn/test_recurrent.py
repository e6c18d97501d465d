"""Recurrent layers against torch.nn.LSTM and numpy readings of NeuralNetwork.proto's equations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

SEQ, BATCH, N_IN, N_OUT = 5, 2, 3, 4


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _mats(rng, count, shape):
    return [rng.standard_normal(shape).astype(np.float32) * 0.5 for _ in range(count)]


@pytest.mark.ops("simpleRecurrent")
@pytest.mark.parametrize("output_all, reverse", [(True, False), (False, True)])
def test_simple_recurrent(run_layer, rng, output_all, reverse):
    w, r = _mats(rng, 1, (N_OUT, N_IN))[0], _mats(rng, 1, (N_OUT, N_OUT))[0]
    b = rng.standard_normal(N_OUT).astype(np.float32)
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)
    h0 = rng.standard_normal((1, BATCH, N_OUT, 1, 1)).astype(np.float32)
    y, h = run_layer(lambda bl: bl.add_simple_rnn("rnn", r, w, b, N_OUT, N_IN, "TANH", ["x", "h0"], ["y", "h"],
                                                  output_all=output_all, reverse_input=reverse),
                     {"x": x, "h0": h0}, outputs=("y", "h"))
    state, steps = h0.reshape(BATCH, N_OUT).astype(np.float64), []
    for t in (range(SEQ - 1, -1, -1) if reverse else range(SEQ)):
        state = np.tanh(x[t, :, :, 0, 0] @ w.T + state @ r.T + b)
        steps.append(state)
    expected = np.stack(steps) if output_all else state[None]
    np.testing.assert_allclose(y.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.reshape(BATCH, N_OUT), state, rtol=1e-4, atol=1e-5)


@pytest.mark.ops("gru")
def test_gru_follows_the_proto_equations(run_layer, rng):
    wz, wr, wo = _mats(rng, 3, (N_OUT, N_IN))
    rz, rr, ro = _mats(rng, 3, (N_OUT, N_OUT))
    bz, br, bo = _mats(rng, 3, (N_OUT,))
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)
    y, h = run_layer(lambda bl: bl.add_gru("gru", [rz, rr, ro], [wz, wr, wo], [bz, br, bo], N_OUT, N_IN, ["x"], ["y", "h"],
                                           activation="TANH", inner_activation="SIGMOID", output_all=True),
                     {"x": x}, outputs=("y", "h"))
    state, steps = np.zeros((BATCH, N_OUT)), []
    for t in range(SEQ):
        xt = x[t, :, :, 0, 0]
        z = _sigmoid(xt @ wz.T + state @ rz.T + bz)
        r = _sigmoid(xt @ wr.T + state @ rr.T + br)
        o = np.tanh(xt @ wo.T + (state * r) @ ro.T + bo)
        state = (1 - z) * o + z * state
        steps.append(state)
    np.testing.assert_allclose(y.reshape(SEQ, BATCH, N_OUT), np.stack(steps), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.reshape(BATCH, N_OUT), state, rtol=1e-4, atol=1e-5)


def _torch_lstm(bidirectional=False):
    torch.manual_seed(0)
    return torch.nn.LSTM(N_IN, N_OUT, bidirectional=bidirectional).eval()


def _gates(lstm, suffix=""):
    """torch packs i, f, g(z), o; the builder wants [i, f, o, z]."""
    def split(t):
        i, f, g, o = (m.detach().numpy() for m in t.chunk(4))
        return [i, f, o, g]
    w = split(getattr(lstm, f"weight_ih_l0{suffix}"))
    r = split(getattr(lstm, f"weight_hh_l0{suffix}"))
    b = split(getattr(lstm, f"bias_ih_l0{suffix}") + getattr(lstm, f"bias_hh_l0{suffix}"))
    return r, w, b


@pytest.mark.ops("uniDirectionalLSTM")
@pytest.mark.parametrize("output_all", [True, False])
def test_unidirectional_lstm_matches_torch(run_layer, rng, output_all):
    lstm = _torch_lstm()
    r, w, b = _gates(lstm)
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)
    h0, c0 = (rng.standard_normal((1, BATCH, N_OUT, 1, 1)).astype(np.float32) for _ in range(2))
    y, h, c = run_layer(lambda bl: bl.add_unilstm("lstm", r, w, b, N_OUT, N_IN, ["x", "h0", "c0"], ["y", "h", "c"],
                                                  output_all=output_all),
                        {"x": x, "h0": h0, "c0": c0}, outputs=("y", "h", "c"))
    with torch.no_grad():
        ty, (th, tc) = lstm(torch.from_numpy(x[..., 0, 0]), (torch.from_numpy(h0[..., 0, 0]), torch.from_numpy(c0[..., 0, 0])))
    expected = ty.numpy() if output_all else th.numpy()
    np.testing.assert_allclose(y.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c.reshape(1, BATCH, N_OUT), tc.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.ops("uniDirectionalLSTM")
def test_reverse_unidirectional_lstm_is_torch_on_the_flipped_sequence(run_layer, rng):
    lstm = _torch_lstm()
    r, w, b = _gates(lstm)
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)
    y, h = run_layer(lambda bl: bl.add_unilstm("lstm", r, w, b, N_OUT, N_IN, ["x"], ["y", "h", "c"], output_all=True,
                                               reverse_input=True),
                     {"x": x}, outputs=("y", "h", "c"))[:2]
    with torch.no_grad():
        ty, (th, _) = lstm(torch.from_numpy(x[::-1, :, :, 0, 0].copy()))
    # the outputs in the order computed: y[k] follows input step SEQ - 1 - k (coremltools' reverse lstm tests)
    np.testing.assert_allclose(y.reshape(SEQ, BATCH, N_OUT), ty.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.reshape(1, BATCH, N_OUT), th.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.ops("uniDirectionalLSTM")
def test_lstm_peepholes_forget_bias_and_cell_clip(run_layer, rng):
    r = _mats(rng, 4, (N_OUT, N_OUT))
    w = _mats(rng, 4, (N_OUT, N_IN))
    b = _mats(rng, 4, (N_OUT,))
    peep = _mats(rng, 3, (N_OUT,))
    x = (rng.standard_normal((SEQ, 1, N_IN, 1, 1)) * 3).astype(np.float32)
    y = run_layer(lambda bl: bl.add_unilstm("lstm", r, w, b, N_OUT, N_IN, ["x"], ["y"], peep=peep, output_all=True,
                                            forget_bias=True, cell_clip_threshold=0.8), {"x": x})
    (ri, rf, ro, rz), (wi, wf, wo, wz), (bi, bf, bo, bz), (pi, pf, po) = r, w, b, peep
    h, c, steps = np.zeros((1, N_OUT)), np.zeros((1, N_OUT)), []
    for t in range(SEQ):
        xt = x[t, :, :, 0, 0]
        i = _sigmoid(xt @ wi.T + h @ ri.T + bi + pi * c)
        f = _sigmoid(xt @ wf.T + h @ rf.T + bf + 1.0 + pf * c)
        z = np.tanh(xt @ wz.T + h @ rz.T + bz)
        c = np.clip(c * f + i * z, -0.8, 0.8)
        o = _sigmoid(xt @ wo.T + h @ ro.T + bo + po * c)
        h = np.tanh(c) * o
        steps.append(h)
    np.testing.assert_allclose(y.reshape(SEQ, 1, N_OUT), np.stack(steps), rtol=1e-4, atol=1e-5)


@pytest.mark.ops("biDirectionalLSTM")
def test_bidirectional_lstm_matches_torch(run_layer, rng):
    lstm = _torch_lstm(bidirectional=True)
    r, w, b = _gates(lstm)
    rb, wb, bb = _gates(lstm, "_reverse")
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)
    y = run_layer(lambda bl: bl.add_bidirlstm("bilstm", r, w, b, rb, wb, bb, N_OUT, N_IN, ["x"], ["y", "hf", "cf", "hb", "cb"],
                                              output_all=True), {"x": x}, outputs=("y", "hf", "cf", "hb", "cb"))[0]
    with torch.no_grad():
        expected = lstm(torch.from_numpy(x[..., 0, 0]))[0].numpy()
    np.testing.assert_allclose(y.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.ops("simpleRecurrent")
def test_initial_state_of_the_wrong_batch_is_a_named_error(run_layer, rng):
    from modelbuild.runtime import ShapeMismatchError

    w, r = _mats(rng, 1, (N_OUT, N_IN))[0], _mats(rng, 1, (N_OUT, N_OUT))[0]
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)
    h0 = np.zeros((1, BATCH + 1, N_OUT, 1, 1), dtype=np.float32)
    with pytest.raises(ShapeMismatchError, match=r"simpleRecurrent layer 'rnn': initial state 1 shape: got \[1, 3, 4, 1, 1\]"):
        run_layer(lambda bl: bl.add_simple_rnn("rnn", r, w, None, N_OUT, N_IN, "TANH", ["x", "h0"], ["y", "h"]),
                  {"x": x, "h0": h0}, outputs=("y", "h"))


# coremltools' builder writes linear / scaledTanh / sigmoidHard of recurrent layers as empty messages;
# its LSTM tests expect the standard functions (iOS14 test_recurrent.py TestLSTM::test_numpy_numerical)
STANDARD_ACTIVATIONS = {
    "LINEAR": lambda v: v,
    "SCALED_TANH": np.tanh,
    "SIGMOID_HARD": lambda v: np.clip(0.2 * v + 0.5, 0, 1),
}


@pytest.mark.ops("uniDirectionalLSTM")
@pytest.mark.parametrize("output_activation", sorted(STANDARD_ACTIVATIONS))
def test_lstm_activations_without_parameters_are_the_standard_ones(run_layer, rng, output_activation):
    r = _mats(rng, 4, (N_OUT, N_OUT))
    w = _mats(rng, 4, (N_OUT, N_IN))
    b = _mats(rng, 4, (N_OUT,))
    x = (rng.standard_normal((SEQ, 1, N_IN, 1, 1)) * 2).astype(np.float32)
    y = run_layer(lambda bl: bl.add_unilstm("lstm", r, w, b, N_OUT, N_IN, ["x"], ["y"], output_all=True,
                                            inner_activation="SIGMOID_HARD", output_activation=output_activation),
                  {"x": x})
    (ri, rf, ro, rz), (wi, wf, wo, wz), (bi, bf, bo, bz) = r, w, b
    gate, outer = STANDARD_ACTIVATIONS["SIGMOID_HARD"], STANDARD_ACTIVATIONS[output_activation]
    h, c, steps = np.zeros((1, N_OUT)), np.zeros((1, N_OUT)), []
    for t in range(SEQ):
        xt = x[t, :, :, 0, 0]
        i, f = gate(xt @ wi.T + h @ ri.T + bi), gate(xt @ wf.T + h @ rf.T + bf)
        c = c * f + i * np.tanh(xt @ wz.T + h @ rz.T + bz)
        h = outer(c) * gate(xt @ wo.T + h @ ro.T + bo)
        steps.append(h)
    np.testing.assert_allclose(y.reshape(SEQ, 1, N_OUT), np.stack(steps), rtol=1e-4, atol=1e-5)


@pytest.mark.ops("simpleRecurrent")
def test_simple_recurrent_with_set_scaled_tanh_parameters_uses_them(run_layer, rng):
    w, r = _mats(rng, 1, (N_OUT, N_IN))[0], _mats(rng, 1, (N_OUT, N_OUT))[0]
    x = rng.standard_normal((SEQ, BATCH, N_IN, 1, 1)).astype(np.float32)

    def add(builder):
        builder.add_simple_rnn("rnn", r, w, None, N_OUT, N_IN, "SCALED_TANH", ["x"], ["y", "h"], output_all=True)
        scaled = builder.nn_spec.layers[-1].simpleRecurrent.activation.scaledTanh
        scaled.alpha, scaled.beta = 1.7159, 2 / 3

    y = run_layer(add, {"x": x}, outputs=("y", "h"))[0]
    state, steps = np.zeros((BATCH, N_OUT)), []
    for t in range(SEQ):
        state = 1.7159 * np.tanh(2 / 3 * (x[t, :, :, 0, 0] @ w.T + state @ r.T))
        steps.append(state)
    np.testing.assert_allclose(y.reshape(SEQ, BATCH, N_OUT), np.stack(steps), rtol=1e-4, atol=1e-5)
