"""rnn, gru, lstm against torch.nn.RNN / GRU / LSTM (gates reordered to MIL's layout)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modelbuild.runtime.mil.testing import mb, run_mil

SEQ, BATCH, INPUT, HIDDEN = 5, 2, 3, 4


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


def _reorder(weights: torch.Tensor, order: list[int], gates: int) -> np.ndarray:
    """Torch's gate blocks in MIL's order."""
    blocks = torch.chunk(weights, gates)
    return _np(torch.cat([blocks[i] for i in order]))


@pytest.fixture
def sequence() -> np.ndarray:
    return _np(torch.randn(SEQ, BATCH, INPUT, generator=torch.Generator().manual_seed(1)))


@pytest.mark.ops("rnn")
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_rnn(sequence, direction):
    torch.manual_seed(0)
    layer = torch.nn.RNN(INPUT, HIDDEN)
    h0 = torch.randn(1, BATCH, HIDDEN)
    bias = _np(layer.bias_ih_l0 + layer.bias_hh_l0)
    out, last = run_mil(
        lambda x, h: mb.rnn(x=x, initial_h=h, weight_ih=_np(layer.weight_ih_l0), weight_hh=_np(layer.weight_hh_l0),
                            bias=bias, direction=direction, output_sequence=True),
        {"x": sequence, "h": _np(h0[0])},
    )
    source = torch.from_numpy(sequence)
    expected, expected_last = layer(source.flip(0) if direction == "reverse" else source, h0)
    np.testing.assert_allclose(out, _np(expected), atol=1e-5)
    np.testing.assert_allclose(last, _np(expected_last[0]), atol=1e-5)


@pytest.mark.ops("gru")
def test_gru_reset_after_matches_torch(sequence):
    torch.manual_seed(0)
    layer = torch.nn.GRU(INPUT, HIDDEN)
    h0 = torch.randn(1, BATCH, HIDDEN)
    order = [0, 2, 1]  # torch r, z, n -> MIL r, o, z
    out, last = run_mil(
        lambda x, h: mb.gru(
            x=x, initial_h=h, weight_ih=_reorder(layer.weight_ih_l0, order, 3),
            weight_hh=_reorder(layer.weight_hh_l0, order, 3), bias=_reorder(layer.bias_hh_l0, order, 3),
            input_bias=_reorder(layer.bias_ih_l0, order, 3), reset_after=True, output_sequence=True),
        {"x": sequence, "h": _np(h0[0])}, target="iOS18",
    )
    expected, expected_last = layer(torch.from_numpy(sequence), h0)
    np.testing.assert_allclose(out, _np(expected), atol=1e-5)
    np.testing.assert_allclose(last, _np(expected_last[0]), atol=1e-5)


@pytest.mark.ops("gru")
def test_gru_resets_before_the_recurrent_product(sequence, rng):
    """The coremltools reference (iOS14 tests): o = tanh(W_o x + R_o (r * h) + b_o), reverse = reversed input."""
    w = rng.uniform(-1, 1, (3 * HIDDEN, INPUT)).astype(np.float32)
    r = rng.uniform(-1, 1, (3 * HIDDEN, HIDDEN)).astype(np.float32)
    b = rng.uniform(-1, 1, 3 * HIDDEN).astype(np.float32)
    h0 = rng.uniform(0, 1, (BATCH, HIDDEN)).astype(np.float32)
    last_step, last = run_mil(
        lambda x, h: mb.gru(x=x, initial_h=h, weight_ih=w, weight_hh=r, bias=b, direction="reverse"),
        {"x": sequence, "h": h0},
    )
    t = torch.from_numpy
    (w_r, w_o, w_z), (r_r, r_o, r_z), (b_r, b_o, b_z) = (torch.chunk(t(a), 3) for a in (w, r, b))
    h = t(h0)
    for x in t(sequence).flip(0):
        reset = torch.sigmoid(x @ w_r.T + h @ r_r.T + b_r)
        update = torch.sigmoid(x @ w_z.T + h @ r_z.T + b_z)
        new = torch.tanh(x @ w_o.T + (reset * h) @ r_o.T + b_o)
        h = (1 - update) * new + update * h
    np.testing.assert_allclose(last_step[0], _np(h), atol=1e-5)
    np.testing.assert_allclose(last, _np(h), atol=1e-5)


@pytest.mark.ops("lstm")
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("output_sequence", [True, False])
def test_lstm(sequence, direction, output_sequence):
    torch.manual_seed(0)
    bidirectional = direction == "bidirectional"
    layer = torch.nn.LSTM(INPUT, HIDDEN, bidirectional=bidirectional)
    directions = 2 if bidirectional else 1
    h0, c0 = torch.randn(directions, BATCH, HIDDEN), torch.randn(directions, BATCH, HIDDEN)
    order = [0, 1, 3, 2]  # torch i, f, g, o -> MIL i, f, o, g

    def params(suffix: str) -> dict:
        get = lambda name: getattr(layer, f"{name}_l0{suffix}")  # noqa: E731
        return {"weight_ih": _reorder(get("weight_ih"), order, 4), "weight_hh": _reorder(get("weight_hh"), order, 4),
                "bias": _reorder(get("bias_ih") + get("bias_hh"), order, 4)}

    kwargs = params("")
    if bidirectional:
        kwargs.update({f"{k}_back": v for k, v in params("_reverse").items()})
    state = lambda s: _np(torch.cat(list(s), dim=-1))  # noqa: E731  (D, B, H) -> (B, D*H)
    out, h_last, c_last = run_mil(
        lambda x, h, c: mb.lstm(x=x, initial_h=h, initial_c=c, direction=direction, output_sequence=output_sequence,
                                **kwargs),
        {"x": sequence, "h": state(h0), "c": state(c0)},
    )
    source = torch.from_numpy(sequence)
    expected, (hn, cn) = layer(source.flip(0) if direction == "reverse" else source, (h0, c0))
    if not output_sequence:
        expected = (torch.cat([expected[-1, :, :HIDDEN], expected[0, :, HIDDEN:]], -1) if bidirectional
                    else expected[-1])[None]
    np.testing.assert_allclose(out, _np(expected), atol=1e-5)
    np.testing.assert_allclose(h_last, state(hn), atol=1e-5)
    np.testing.assert_allclose(c_last, state(cn), atol=1e-5)


@pytest.mark.ops("lstm")
def test_packed_sequence_lstm_converted_by_coremltools():
    """coremltools gives this LSTM a zero initial state of (seq, H) rows instead of (batch, H); Core ML runs it."""
    import warnings

    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from modelbuild.runtime.mil import Program
    from modelbuild.runtime.mil.testing import ct

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(INPUT, HIDDEN, batch_first=True)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            output, _ = self.lstm(pack_padded_sequence(x, lengths, batch_first=True))
            return pad_packed_sequence(output, batch_first=True)[0]

    torch.manual_seed(0)
    model = Encoder().eval()
    x, lengths = torch.randn(3, 10, INPUT), torch.tensor([10, 5, 1], dtype=torch.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (x, lengths))
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=x.shape),
                                         ct.TensorType(name="lengths", shape=lengths.shape, dtype=np.int32)],
                         outputs=[ct.TensorType(name="y")], convert_to="mlprogram",
                         minimum_deployment_target=ct.target.iOS16, compute_precision=ct.precision.FLOAT32)
    (got,) = Program.from_spec(mlmodel.get_spec(), mlmodel.weights_dir).run(
        {"x": x.numpy(), "lengths": lengths.numpy()}).values()
    np.testing.assert_allclose(got, _np(model(x, lengths)), atol=1e-5)
