"""Matrix products: innerProduct, batchedMatmul, embedding, embeddingND, dot."""
from __future__ import annotations

import numpy as np
import torch

from modelbuild.runtime.nn.layer import NN_LAYERS, Layer, broadcast_shapes, f32


def _linear(layer: Layer, matrix: np.ndarray, out_features: int, in_features: int) -> np.ndarray:
    """matrix [N, C_in] @ W.T + b with W [C_out, C_in] (torch for speed)."""
    p = layer.params
    weight = layer.cached("torch:weights", lambda: torch.from_numpy(
        layer.weights("weights", (out_features, in_features))))
    bias = layer.cached("torch:bias", lambda: torch.from_numpy(layer.weights("bias", (out_features,)))) \
        if p.hasBias else None
    with torch.no_grad():
        y = torch.nn.functional.linear(torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)), weight, bias)
    return y.numpy()


@NN_LAYERS.register("innerProduct")
def inner_product(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Fully connected layer; the input's rank decides how it is read (NeuralNetwork.proto)."""
    p = layer.params
    c_in, c_out = int(p.inputChannels), int(p.outputChannels)
    shape = x.shape
    rank = x.ndim
    if rank <= 3:
        lead, feat = shape[:-1], shape[-1]
    elif rank == 4:
        lead, feat = shape[:1], int(np.prod(shape[1:]))
    elif rank == 5:
        lead, feat = shape[:2], int(np.prod(shape[2:]))
    else:
        raise layer.mismatch("input rank", rank, "1 to 5")
    if feat != c_in:
        raise layer.mismatch(
            f"input features (input shape {list(shape)})", feat, f"inputChannels = {c_in}")
    y = _linear(layer, x.reshape(-1, c_in), c_out, c_in)
    if rank <= 3:
        return y.reshape(lead + (c_out,))
    return y.reshape(lead + (c_out, 1, 1))


@NN_LAYERS.register("batchedMatmul")
def batched_matmul(layer: Layer, a: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """a @ b with numpy broadcasting, or a @ W (+ bias) with W [X1, X2] stored column-major."""
    p = layer.params
    if rest:
        b = f32(rest[0])
        a = f32(a)
        a = a.reshape(1, -1) if a.ndim == 1 else a  # (D) -> (1, D)
        b = b.reshape(-1, 1) if b.ndim == 1 else b  # (D) -> (D, 1)
        if p.transposeA and a.ndim >= 2:
            a = np.swapaxes(a, -1, -2)
        if p.transposeB and b.ndim >= 2:
            b = np.swapaxes(b, -1, -2)
        if a.shape[-1] != b.shape[-2]:
            raise layer.mismatch("inner dimensions of a and b", f"{list(a.shape)} and {list(b.shape)}", "equal")
        if a.ndim > 2 and b.ndim > 2:
            broadcast_shapes(layer, a.shape[:-2], b.shape[:-2])
        return f32(np.matmul(a, b))
    x1, x2 = int(p.weightMatrixFirstDimension), int(p.weightMatrixSecondDimension)
    if a.shape[-1] != x1:
        raise layer.mismatch(f"last input dimension (input shape {list(a.shape)})", a.shape[-1], f"weightMatrixFirstDimension = {x1}")
    weight = layer.cached("matrix", lambda: np.ascontiguousarray(layer.weights("weights", (x2, x1)).T))
    y = f32(a).reshape(-1, x1) @ weight
    if p.hasBias:
        y = y + layer.weights("bias", (x2,))
    return f32(y.reshape(a.shape[:-1] + (x2,)))


@NN_LAYERS.register("embedding")
def embedding(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Look up rows of W [C_out, inputDim] for indices shaped [..., 1, 1, 1]."""
    p = layer.params
    table = layer.weights("weights", (int(p.outputChannels), int(p.inputDim)))
    idx = np.asarray(x).astype(np.int64)
    if idx.ndim < 4 or idx.shape[-3:] != (1, 1, 1):
        raise layer.mismatch("input shape", list(idx.shape), "rank 4 or 5 ending in 1, 1, 1")
    flat = idx.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= p.inputDim):
        raise layer.mismatch("indices", f"[{flat.min()}, {flat.max()}]", f"[0, {p.inputDim - 1}]")
    y = table[:, flat].T
    if p.hasBias:
        y = y + layer.weights("bias", (int(p.outputChannels),))
    return f32(y.reshape(idx.shape[:-3] + (int(p.outputChannels), 1, 1)))


@NN_LAYERS.register("embeddingND")
def embedding_nd(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Look up columns of W [embeddingSize, vocabSize] for indices shaped [..., 1]."""
    p = layer.params
    table = layer.weights("weights", (int(p.embeddingSize), int(p.vocabSize)))
    idx = np.asarray(x).astype(np.int64)
    if idx.shape[-1] != 1:
        raise layer.mismatch("last input dimension", idx.shape[-1], 1)
    y = table[:, idx.reshape(-1)].T
    if p.hasBias:
        y = y + layer.weights("bias", (int(p.embeddingSize),))
    return f32(y.reshape(idx.shape[:-1] + (int(p.embeddingSize),)))


@NN_LAYERS.register("dot")
def dot(layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product (or cosine similarity) of [..., C, 1, 1] vectors."""
    if a.shape != b.shape:
        raise layer.mismatch("input shapes", f"{list(a.shape)} and {list(b.shape)}", "equal")
    a, b = f32(a), f32(b)
    if layer.params.cosineSimilarity:
        a = a / np.linalg.norm(a, axis=-3, keepdims=True)
        b = b / np.linalg.norm(b, axis=-3, keepdims=True)
    return f32((a * b).sum(axis=-3, keepdims=True))
