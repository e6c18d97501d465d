"""NeuralNetwork (.mlmodel) interpreter of the reference runtime.

`NN_LAYERS` is the layer registry (one kernel per layer type, registered by
decorator in the modules imported below); `NeuralNetworkEngine` walks a spec's
layers.
"""
from __future__ import annotations

from modelbuild.runtime.nn import (  # noqa: F401  (importing registers the kernels)
    activation,
    control_flow,
    convolution,
    elementwise,
    indexing,
    matmul,
    normalization,
    pooling,
    random,
    recurrent,
    reduce,
    reshape,
    resize,
    slicing,
    tensors,
    unary,
    volumetric,
)
from modelbuild.runtime.nn.engine import NeuralNetworkEngine
from modelbuild.runtime.nn.layer import NN_LAYERS, Layer

__all__ = ["NN_LAYERS", "Layer", "NeuralNetworkEngine"]
