"""Run a NeuralNetwork (plain, classifier or regressor) spec layer by layer.

Given the model's inputs as Core ML presents them to the network (images as
[C, H, W] float arrays with raw 0..255 values, multi-arrays as given), the
engine maps them to the network's tensor ranks (`arrayInputShapeMapping`,
`imageInputShapeMapping`), applies the image `preprocessing`, then walks the
layers in order, calling one registered kernel per layer. Blobs nobody needs
any more are freed unless every intermediate blob was asked for.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from modelbuild.runtime.features import FeatureDescription
from modelbuild.runtime.nn.control_flow import LoopBreak, LoopContinue, is_true
from modelbuild.runtime.nn.layer import NN_LAYERS, Layer
from modelbuild.runtime.registry import ModelRuntimeError

# layers whose final-state outputs may be left undeclared
OPTIONAL_TRAILING_OUTPUTS = {"simpleRecurrent", "gru", "uniDirectionalLSTM", "biDirectionalLSTM"}
RANK5_ARRAY_MAPPING = 0
RANK5_IMAGE_MAPPING = 0


class NeuralNetworkEngine:
    """Executes the `layers` of a NeuralNetwork-like spec message (kernels resolved at load)."""

    def __init__(self, network: Any, inputs: dict[str, FeatureDescription] | None = None) -> None:
        self.network = network
        self.input_descriptions = inputs or {}
        self.legacy_arrays = getattr(network, "arrayInputShapeMapping", 1) == RANK5_ARRAY_MAPPING
        self.legacy_images = getattr(network, "imageInputShapeMapping", 1) == RANK5_IMAGE_MAPPING
        self.layers = [Layer(spec) for spec in network.layers]
        self.kernels = [NN_LAYERS.get(layer.kind, where=repr(layer)) for layer in self.layers]
        self.preprocessing = {p.featureName: p for p in getattr(network, "preprocessing", [])}
        self.nested: dict[int, dict[str, NeuralNetworkEngine]] = {}
        for index, layer in enumerate(self.layers):
            if layer.kind in ("branch", "loop"):
                self.nested[index] = {
                    field.name: NeuralNetworkEngine(value)
                    for field, value in layer.params.ListFields() if field.message_type is not None
                }
        self._last_use = self._compute_last_use()

    def _compute_last_use(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            for name in layer.inputs:
                last[name] = index
        return last

    # -- inputs ---------------------------------------------------------------------------
    def _preprocess(self, name: str, image: np.ndarray, color_space: str) -> np.ndarray:
        step = self.preprocessing.get(name)
        if step is None:
            return image
        kind = step.WhichOneof("preprocessor")
        if kind == "scaler":
            s = step.scaler
            if color_space in ("GRAYSCALE", "GRAYSCALE_FLOAT16"):
                bias = np.array([s.grayBias], dtype=np.float32)
            elif color_space == "BGR":
                bias = np.array([s.blueBias, s.greenBias, s.redBias], dtype=np.float32)
            else:
                bias = np.array([s.redBias, s.greenBias, s.blueBias], dtype=np.float32)
            return image * np.float32(s.channelScale) + bias[:, None, None]
        if kind == "meanImage":
            mean = np.asarray(step.meanImage.meanImage, dtype=np.float32)
            if mean.size != image.size:
                raise ModelRuntimeError(
                    f"The mean image of input {name!r} has {mean.size} values; the image has "
                    f"{image.size} ({list(image.shape)})."
                )
            return image - mean.reshape(image.shape)
        return image

    def map_inputs(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The network's input tensors from Core ML-level input values."""
        feeds: dict[str, np.ndarray] = {}
        for name, value in values.items():
            desc = self.input_descriptions.get(name)
            array = np.asarray(value, dtype=np.float32)
            if desc is not None and desc.kind == "image":
                array = self._preprocess(name, array, desc.color_space or "RGB")
                array = array[None, None] if self.legacy_images else array[None]
            elif self.legacy_arrays and desc is not None and desc.kind == "multiArray":
                array = _to_rank5(array)
            elif array.ndim == 0:
                array = array.reshape(1)
            feeds[name] = array
        return feeds

    # -- execution ------------------------------------------------------------------------
    def run(self, values: dict[str, np.ndarray], *, intermediate: bool = False,
            keep: set[str] | None = None) -> dict[str, np.ndarray]:
        """All blobs still alive after the last layer (every blob if `intermediate`)."""
        blobs = self.map_inputs(values)
        # nested networks read outer blobs: with control flow, keep every blob alive
        self.execute(blobs, free=not (intermediate or self.nested), keep=keep or set())
        return blobs

    def execute(self, blobs: dict[str, np.ndarray], *, free: bool = False, keep: set[str] | None = None) -> None:
        """Run the layers over `blobs` in place (nested networks share their parent's blobs)."""
        keep = keep or set()
        for index, (layer, kernel) in enumerate(zip(self.layers, self.kernels)):
            if layer.kind in ("branch", "loop"):
                self._run_control(index, layer, blobs)
                continue
            try:
                args = [blobs[name] for name in layer.inputs]
            except KeyError as err:
                raise ModelRuntimeError(
                    f"{layer} reads blob {err.args[0]!r}, which no input or earlier layer produces."
                ) from None
            try:
                result = kernel(layer, *args)
            except ModelRuntimeError:
                raise
            except (ValueError, IndexError, TypeError, RuntimeError) as err:
                raise ModelRuntimeError(f"{layer} failed: {err}") from err
            results = result if isinstance(result, (tuple, list)) else (result,)
            if layer.kind in OPTIONAL_TRAILING_OUTPUTS:
                results = results[: len(layer.outputs)]
            if len(results) != len(layer.outputs):
                raise ModelRuntimeError(
                    f"{layer} produced {len(results)} output(s) but declares {len(layer.outputs)}."
                )
            for name, value in zip(layer.outputs, results):
                blobs[name] = value
            if free:
                for name in set(layer.inputs):
                    if self._last_use.get(name) == index and name not in keep:
                        blobs.pop(name, None)

    def _run_control(self, index: int, layer: Layer, blobs: dict[str, np.ndarray]) -> None:
        """branch: run ifBranch or elseBranch; loop: NeuralNetwork.proto's three loop forms."""
        nets = self.nested[index]
        args = [blobs[name] for name in layer.inputs if name in blobs]
        if layer.kind == "branch":
            if not args:
                raise ModelRuntimeError(f"{layer} needs its condition blob {layer.inputs!r}.")
            chosen = nets.get("ifBranch") if is_true(args[0]) else nets.get("elseBranch")
            if chosen is not None:
                chosen.execute(blobs)
            return
        p = layer.params
        limit = int(np.asarray(args[0]).reshape(-1)[0]) if args else int(p.maxLoopIterations)
        condition = nets.get("conditionNetwork") if p.conditionVar else None
        body = nets.get("bodyNetwork")

        def keep_going() -> bool:
            if condition is None:
                return True
            condition.execute(blobs)
            return is_true(blobs[p.conditionVar])

        bounded = condition is None or limit > 0
        iteration = 0
        while (not bounded or iteration < limit) and keep_going():
            iteration += 1
            try:
                if body is not None:
                    body.execute(blobs)
            except LoopContinue:
                continue
            except LoopBreak:
                break


def _to_rank5(array: np.ndarray) -> np.ndarray:
    """NeuralNetwork.proto's RANK5_ARRAY_MAPPING: [C] -> [1,1,C,1,1], [C,H,W] -> [1,1,C,H,W]."""
    if array.ndim == 1:
        return array.reshape(1, 1, -1, 1, 1)
    if array.ndim == 3:
        return array[None, None]
    if array.ndim == 5:
        return array
    if array.ndim in (2, 4):  # [Seq or Batch, C] / [Seq or Batch, C, H, W] given explicitly
        return array.reshape((array.shape[0], 1) + array.shape[1:] + (1,) * (4 - array.ndim))
    return array
