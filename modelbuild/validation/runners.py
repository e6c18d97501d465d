"""The models under comparison behind one interface: PyTorch, ONNX Runtime, Core ML.

Every runner takes and returns float32 arrays in model units. A Core ML variant
with image features quantizes its image inputs to pixels (so the reference is
computed on exactly the values it sees, `effective_feeds`) and turns image
outputs back into arrays of pixel levels.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from modelbuild import runtime
from modelbuild.recipe.schema import ImageInput, ImageOutput


class Runner:
    """A model that maps input arrays to output arrays."""

    name: str = ""
    backend: str = ""

    def effective_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs as this model actually receives them (identity unless it quantizes)."""
        return feeds

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def image_outputs(self) -> dict[str, ImageOutput]:
        """Outputs this runner returns as pixel levels."""
        return {}

    def probability_outputs(self) -> set[str]:
        """Outputs this runner returns as probabilities where the reference gives logits."""
        return set()


class TorchRunner(Runner):
    """The PyTorch model: the reference."""

    def __init__(self, model: Any, output_names: list[str]) -> None:
        import torch

        self.name, self.backend = "torch", f"PyTorch {torch.__version__} (eager, CPU)"
        self.model, self.output_names = model, output_names

    def run(self, feeds):
        import torch

        with torch.no_grad():
            result = self.model(*(torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()))
        result = result if isinstance(result, (tuple, list)) else (result,)
        return {name: tensor.numpy().astype(np.float32) for name, tensor in zip(self.output_names, result)}


class OnnxRunner(Runner):
    """An ONNX file under onnxruntime (one session per file per process, see `onnx_session`)."""

    def __init__(self, path: Path, name: str = "onnx") -> None:
        import onnxruntime

        self.session = onnx_session(path)
        self.name, self.backend = name, f"onnxruntime {onnxruntime.__version__} (CPU)"

    def run(self, feeds):
        """Inputs and outputs by position: the recipe's names need not be the file's."""
        arrays = {graph_input.name: value for graph_input, value in zip(self.session.get_inputs(), feeds.values())}
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, (np.asarray(v, np.float32) for v in self.session.run(names, arrays))))


_SESSIONS: OrderedDict[tuple, Any] = OrderedDict()
KEEP_SESSIONS = 4  # a session holds the model's weights: keep the few a recipe's stages share


def onnx_session(path: Path) -> Any:
    """An onnxruntime CPU session of the file, made once per process while the file stays the same (same
    path, size, modification and change times, inode: any write or replacement gives a new session)."""
    import onnxruntime

    path = Path(path).resolve()
    try:
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    except OSError:
        key = None  # onnxruntime says what is wrong with the path
    if key in _SESSIONS:
        _SESSIONS.move_to_end(key)
        return _SESSIONS[key]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    if key is not None:
        _SESSIONS[key] = session
    while len(_SESSIONS) > KEEP_SESSIONS:
        _SESSIONS.popitem(last=False)
    return session


class CoreMLRunner(Runner):
    """A Core ML file under modelbuild.runtime (native Core ML on macOS with backend='auto')."""

    def __init__(self, path: Path, name: str, images_in: dict[str, ImageInput],
                 images_out: dict[str, ImageOutput], backend: str = "auto",
                 classifier: tuple[str, str, list[str]] | None = None) -> None:
        """`classifier`: (recipe output name, probabilities output name, labels) of a classifier variant."""
        self.model = runtime.load(path, backend=backend)
        self.name, self.images_in, self.images_out = name, images_in, images_out
        self.classifier = classifier
        self.backend = ("Core ML (native)" if self.model.backend == "native"
                        else "modelbuild.runtime (reference)")

    def image_outputs(self):
        return self.images_out

    def probability_outputs(self):
        return {self.classifier[0]} if self.classifier else set()

    def effective_feeds(self, feeds):
        return {name: (pixels_to_values(values_to_pixels(value, self.images_in[name]), self.images_in[name])
                       if name in self.images_in else value) for name, value in feeds.items()}

    def run(self, feeds):
        from PIL import Image

        prepared = {}
        for name, value in feeds.items():
            if name in self.images_in:
                prepared[name] = to_pil(values_to_pixels(value, self.images_in[name]), self.images_in[name])
            else:
                prepared[name] = value
        outputs = self.model.predict(prepared)
        if self.classifier:
            output, probabilities, labels = self.classifier
            table = outputs[probabilities]
            return {output: np.array([[float(table[label]) for label in labels]], np.float32)}
        result = {}
        for name, value in outputs.items():
            if isinstance(value, Image.Image):
                result[name] = from_pil(value, self.images_out.get(name, ImageOutput()))
            elif isinstance(value, np.ndarray):
                result[name] = value.astype(np.float32)
        return result


def _bias(image: ImageInput | ImageOutput, channels: int) -> np.ndarray:
    bias = image.bias if image.bias is not None else [0.0] * channels
    return np.asarray(bias, np.float32).reshape(1, channels, 1, 1)


def _channel_scale(image: ImageInput, channels: int) -> np.ndarray:
    factors = image.channel_scale if image.channel_scale is not None else [1.0] * channels
    return np.asarray(factors, np.float32).reshape(1, channels, 1, 1)


def values_to_pixels(value: np.ndarray, image: ImageInput) -> np.ndarray:
    """Model-unit input [1, C, H, W] -> the uint8 pixels that the image preprocessing maps back to it."""
    channels = value.shape[1]
    pixels = (value / _channel_scale(image, channels) - _bias(image, channels)) / image.scale
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def pixels_to_values(pixels: np.ndarray, image: ImageInput) -> np.ndarray:
    """uint8 pixels [1, C, H, W] -> model-unit values: (scale * pixel + bias) * channel_scale."""
    channels = pixels.shape[1]
    values = (image.scale * pixels.astype(np.float32) + _bias(image, channels)) * _channel_scale(image, channels)
    return values.astype(np.float32)


def reference_pixels(value: np.ndarray, image: ImageOutput) -> np.ndarray:
    """What an image output should hold for a model-unit output: round(clip(scale * value + bias)) levels."""
    return np.clip(np.rint(image.scale * value + _bias(image, value.shape[1])), 0, 255).astype(np.float32)


def to_pil(pixels: np.ndarray, image: ImageInput):
    """uint8 [1, C, H, W] in the model's channel order -> a PIL image."""
    from PIL import Image

    hwc = pixels[0].transpose(1, 2, 0)
    if image.color_layout == "GRAYSCALE":
        return Image.fromarray(hwc[:, :, 0], mode="L")
    if image.color_layout == "BGR":
        hwc = hwc[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(hwc), mode="RGB")


def from_pil(picture, image: ImageOutput) -> np.ndarray:
    """A PIL image output -> float32 pixel levels [1, C, H, W] in the model's channel order."""
    array = np.asarray(picture.convert("L" if image.color_layout == "GRAYSCALE" else "RGB"), np.float32)
    array = array[:, :, None] if array.ndim == 2 else array
    if image.color_layout == "BGR":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None])


