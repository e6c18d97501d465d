"""One model build per recipe per process: the stages that need the PyTorch model share it.

`shared_model(recipe, root)` builds the model (`modelbuild.torch_model.build_model`) the first
time and hands the same module to the next stage of the same process, as long as nothing it
was built from changed: the key is the recipe's model fingerprint (model fields, interface,
patch reads, torch version) and the stat (size, modification and change times, inode) of every
file it was built from (weights, in-project source, files the patches read). The warnings of
the build are given again on every hit, so each stage reports what its model is.

A stage must not change the model for the next one: before a hit is handed out, its parameters,
buffers, train/eval flags, hooks and forward methods are compared with what they were after the
build, and a model that changed is built again. `default_outputs` is the model's output on the
recipe's generated inputs, computed once per model (the ONNX stage's reference and the torch
frontend's output shapes).

Imports torch: call only from inside build actions.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelbuild import fingerprint, torch_model
from modelbuild.feeds import generated_inputs
from modelbuild.file_deps import model_file_deps
from modelbuild.project import Loaded
from modelbuild.recipe import Recipe

KEEP = 2  # models kept per process (ResNet50 is ~100 MB): a build goes recipe by recipe


@dataclass
class _Entry:
    model: Any
    warnings: list[warnings.WarningMessage]
    state: dict[str, Any]
    outputs: list[np.ndarray] | None = None


_MODELS: OrderedDict[str, _Entry] = OrderedDict()


def shared_model(recipe: Recipe, root: Path) -> Any:
    """The recipe's PyTorch model in eval mode, built once per process while its inputs stay the same."""
    return _entry(recipe, root).model


def default_outputs(recipe: Recipe, root: Path) -> list[np.ndarray]:
    """Every output of the model on `generated_inputs(recipe)` (read-only arrays), computed once per model."""
    entry = _entry(recipe, root)
    if entry.outputs is None:
        import torch

        with torch.no_grad():
            result = entry.model(*(torch.from_numpy(v) for v in generated_inputs(recipe).values()))
        entry.outputs = [t.numpy() for t in (result if isinstance(result, (tuple, list)) else (result,))]
        for array in entry.outputs:
            array.setflags(write=False)
        entry.state = _state(entry.model)  # the run must not have changed it either
    return entry.outputs


def remember_outputs(recipe: Recipe, root: Path, outputs: list[np.ndarray]) -> None:
    """Keep `outputs` as the model's outputs on `generated_inputs(recipe)`, computed by a caller's own run
    of it (the ONNX export's trace), so that `default_outputs` does not run the model again."""
    entry = _entry(recipe, root)
    for array in outputs:
        array.setflags(write=False)
    entry.outputs, entry.state = list(outputs), _state(entry.model)


def forget_models() -> None:
    """Drop every kept model (tests; a process that is done with its builds)."""
    _MODELS.clear()


def _entry(recipe: Recipe, root: Path) -> _Entry:
    key = model_key(recipe, root)
    entry = _MODELS.get(key)
    if entry is not None and _state(entry.model) == entry.state:
        _MODELS.move_to_end(key)
        for message in entry.warnings:
            warnings.warn_explicit(message.message, message.category, message.filename, message.lineno)
        return entry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = torch_model.build_model(recipe, root)
    for message in caught:
        warnings.warn_explicit(message.message, message.category, message.filename, message.lineno)
    _MODELS[key] = entry = _Entry(model, list(caught), _state(model))
    while len(_MODELS) > KEEP:
        _MODELS.popitem(last=False)
    return entry


def model_key(recipe: Recipe, root: Path) -> str:
    """What the model is built from: the model fingerprint and the stat of each file it reads."""
    root = Path(root).resolve()
    files = {}
    for name in model_file_deps(Loaded.of(recipe, root)):  # the files doit tracks for the model
        path = root / name
        try:
            info = path.stat()
            files[str(path)] = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
        except OSError:
            files[str(path)] = None
    return json.dumps({"root": str(root), "model": fingerprint.model_fingerprint(recipe), "files": files},
                      sort_keys=True, default=str)


def _state(model: Any) -> dict[str, Any]:
    """What a stage could change in a module: its tensors (a digest of their bytes), modes, hooks, forwards."""
    import torch

    modules = list(model.named_modules())
    digest = hashlib.blake2b(digest_size=20)
    for name, tensor in model.state_dict(keep_vars=True).items():
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(memoryview(data.view(torch.uint8).numpy()))
    return {
        "tensors": digest.hexdigest(),
        "training": [module.training for _, module in modules],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for _, m in modules],
        "forward": [id(m.__dict__.get("forward")) for _, m in modules],
        "names": [name for name, _ in modules],
    }
