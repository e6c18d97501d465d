"""`Layer`, the view kernels get of a layer: its weight cache."""
from __future__ import annotations

import numpy as np

from modelbuild.quiet import coremltools
from modelbuild.runtime.nn.layer import Layer


def _proto():
    coremltools()  # quiet import first
    from coremltools.proto import NeuralNetwork_pb2

    return NeuralNetwork_pb2


def _lstm_weights(value: float):
    params = _proto().LSTMWeightParams()
    params.inputGateWeightMatrix.floatValue.extend([value] * 4)
    return params


def test_weights_of_distinct_messages_never_share_a_cache_entry():
    """A freed message's id can be reused by the next one (as biDirectionalLSTM's two weightParams
    wrappers were): each must still get its own weights."""
    for _ in range(20):
        layer = Layer(_proto().NeuralNetworkLayer(name="bilstm", biDirectionalLSTM={}))
        first = layer.weights("inputGateWeightMatrix", (4,), params=_lstm_weights(1.0))
        second = layer.weights("inputGateWeightMatrix", (4,), params=_lstm_weights(2.0))
        np.testing.assert_array_equal(first, np.full(4, 1.0, np.float32))
        np.testing.assert_array_equal(second, np.full(4, 2.0, np.float32))
