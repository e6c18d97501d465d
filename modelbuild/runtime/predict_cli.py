"""`modelbuild predict PATH --input NAME=VALUE ... [-o DIR]`: run a Core ML file from the shell.

VALUE is an image file (.png, .jpg, ...), a .npy file or a number. An image
given for an image input is passed as is; for a multi-array input it becomes a
float32 array with values in 0..1 shaped [1, C, H, W] (or [C, H, W] if the
input has rank 3). Image outputs are written as PNG, arrays as .npy. A stateful
(iOS18) model predicts once from a fresh state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelbuild.runtime.features import FeatureDescription
from modelbuild.runtime.model import load
from modelbuild.runtime.registry import ModelRuntimeError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class PredictCliError(Exception):
    """A problem with the command line (bad --input, unreadable file) or with running the model."""


def _split_spec(spec: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name or not value:
        raise PredictCliError(f"--input {spec!r} is not NAME=VALUE (VALUE: an image file, a .npy file or a number).")
    return name, value


def _image_as_array(image: Any, desc: FeatureDescription) -> np.ndarray:
    mode = "L" if desc.shape and len(desc.shape) >= 3 and desc.shape[-3] == 1 else "RGB"
    pixels = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
    chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return chw if len(desc.shape) == 3 else chw[None]


def _read_value(name: str, value: str, desc: FeatureDescription) -> Any:
    path = Path(value)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if not path.exists():
            raise PredictCliError(f"--input {name}: no image file at {value!r}.")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as opened:
                image = opened.copy()
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise PredictCliError(f"--input {name}: {value!r} is not an image that can be read ({err}).") from None
        return image if desc.kind == "image" else _image_as_array(image, desc)
    if path.suffix.lower() == ".npy":
        if not path.exists():
            raise PredictCliError(f"--input {name}: no .npy file at {value!r}.")
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise PredictCliError(f"--input {name}: {value!r} is not a numeric .npy array ({err}).") from None
    try:
        number = float(value)
    except ValueError:
        raise PredictCliError(
            f"--input {name}={value!r}: expected an image file ({', '.join(sorted(IMAGE_SUFFIXES))}), "
            "a .npy file or a number."
        ) from None
    if desc.kind == "multiArray":
        shape = desc.shape if desc.shape and int(np.prod(desc.shape)) == 1 else (1,)
        return np.full(shape, number, dtype=desc.dtype or np.float32)
    if desc.kind == "int64":
        return int(number)
    return number


def _describe_value(value: Any) -> str:
    if hasattr(value, "size") and hasattr(value, "mode") and not isinstance(value, np.ndarray):
        return f"image {value.mode} {value.size[0]}x{value.size[1]}"
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return f"array {value.dtype} {list(value.shape)}"
        return (f"array {value.dtype} {list(value.shape)} min {float(value.min()):.6g} "
                f"max {float(value.max()):.6g} mean {float(value.mean()):.6g}")
    if isinstance(value, dict):
        top = sorted(value.items(), key=lambda kv: kv[1], reverse=True)[:5]
        return "probabilities " + ", ".join(f"{k}: {v:.4g}" for k, v in top)
    return repr(value)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "output"


def _write(out_dir: Path, name: str, value: Any) -> Path | None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _safe_name(name)
    if isinstance(value, np.ndarray):
        target = out_dir / f"{stem}.npy"
        np.save(target, value)
        return target
    if hasattr(value, "save") and hasattr(value, "mode"):
        target = out_dir / f"{stem}.png"
        value.save(target)
        return target
    return None


def predict_command(path: Path, input_specs: list[str], out_dir: Path | None, backend: str = "auto") -> str:
    """Run the model at `path` on the given inputs; return a report (and write files to out_dir)."""
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise PredictCliError(f"-o {out_dir}: that is a file; give a folder (it is created if missing).")
    try:
        model = load(path, backend=backend)
    except ModelRuntimeError as err:
        raise PredictCliError(str(err)) from err
    inputs: dict[str, Any] = {}
    for spec in input_specs:
        name, value = _split_spec(spec)
        if name not in model.inputs:
            raise PredictCliError(
                f"--input {name}: the model has no input {name!r}; its inputs are "
                f"{', '.join(repr(n) for n in model.input_names)}."
            )
        inputs[name] = _read_value(name, value, model.inputs[name])
    try:
        # one prediction of a stateful model starts from a fresh state (zeros), as a first call would
        outputs = model.predict(inputs, state=model.make_state() if model.states else None)
    except ModelRuntimeError as err:
        raise PredictCliError(str(err)) from err
    lines = [f"{path} ({model.model_type}, {model.backend} backend)"]
    if model.states:
        lines.append(f"  from a fresh state (zeros): {', '.join(map(repr, model.states))}")
    for name, value in outputs.items():
        line = f"  {name}: {_describe_value(value)}"
        if out_dir is not None:
            written = _write(out_dir, name, value)
            if written is not None:
                line += f" -> {written}"
        lines.append(line)
    return "\n".join(lines)
