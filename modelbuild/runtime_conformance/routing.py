"""Route `coremltools.models.MLModel.predict` to the modelbuild reference runtime.

`route_predict()` replaces `MLModel.predict` (and `MLModel.make_state`) with
versions that do what coremltools does before it hands the data to Core ML
(check the dict, turn torch tensors into numpy arrays, fp16 inputs into fp32)
and then call `modelbuild.runtime.load(mlmodel).predict(data)`. The loaded
runtime model is cached on the MLModel, as Core ML keeps its compiled model.

Every routed call first tells the listeners registered with `on_reach()` that
the current test reached the runtime: that is how the conformance plugin tells
"the runtime got it wrong" from "coremltools failed before asking".
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from modelbuild.runtime import quiet_coremltools

_RUNTIME_CACHE_ATTRIBUTE = "_modelbuild_runtime_model"
DEFAULT_RUNTIME = "modelbuild.runtime:load"
_runtime_target = DEFAULT_RUNTIME
_reach_listeners: list[Callable[[], None]] = []
_originals: dict[str, Any] = {}


class RuntimeUnavailableError(RuntimeError):
    """`modelbuild.runtime.load` cannot be imported (the runtime is not written yet)."""


def on_reach(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener()` each time a routed predict/make_state is entered; returns an unsubscriber."""
    _reach_listeners.append(listener)
    return lambda: _reach_listeners.remove(listener)


def _notify_reach() -> None:
    for listener in _reach_listeners:
        listener()


def set_runtime(target: str) -> None:
    """Route predict to `target`, a "module:function" taking an MLModel (default modelbuild.runtime:load)."""
    global _runtime_target
    module, _, attribute = target.partition(":")
    if not module or not attribute:
        raise ValueError(f"The runtime must be given as 'module:function', not {target!r}.")
    _runtime_target = target


def runtime_loader() -> Callable[[Any], Any]:
    """The configured loader (`modelbuild.runtime.load`), or a `RuntimeUnavailableError` saying why not."""
    module_name, _, attribute = _runtime_target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RuntimeUnavailableError(
            f"The reference runtime cannot be imported (import {module_name} failed: {error})."
        ) from error
    load = getattr(module, attribute, None)
    if not callable(load):
        raise RuntimeUnavailableError(
            f"The reference runtime has no {module_name}.{attribute}(source) yet, "
            "so MLModel.predict cannot be routed to it."
        )
    return load


def runtime_model_for(mlmodel: Any) -> Any:
    """The runtime model for `mlmodel`, loaded once and cached on the MLModel."""
    cached = mlmodel.__dict__.get(_RUNTIME_CACHE_ATTRIBUTE)
    if cached is None:
        load = runtime_loader()
        try:
            takes_backend = "backend" in inspect.signature(load).parameters
        except (TypeError, ValueError):
            takes_backend = False
        # backend="reference": even on a real Mac, judge the reference runtime, not Core ML.
        cached = load(mlmodel, backend="reference") if takes_backend else load(mlmodel)
        mlmodel.__dict__[_RUNTIME_CACHE_ATTRIBUTE] = cached
    return cached


def _to_numpy_outputs(outputs: Any) -> Any:
    """Torch tensors in the runtime's answer become numpy arrays, as Core ML returns."""
    if not isinstance(outputs, dict):
        raise TypeError(
            f"modelbuild.runtime predict() returned {type(outputs).__name__}; "
            "MLModel.predict returns a dict of output name -> value."
        )
    converted = {}
    for name, value in outputs.items():
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            value = value.detach().cpu().numpy()
        converted[name] = value
    return converted


def _predict_one(mlmodel: Any, runtime_model: Any, data: dict, state: Any) -> dict:
    mlmodel._verify_input_dict(data)
    mlmodel._convert_tensor_to_numpy(data)
    mlmodel._update_float16_multiarray_input_to_float32(data)
    if state is None:
        outputs = runtime_model.predict(data)
    else:
        outputs = runtime_model.predict(data, state=state)
    return _to_numpy_outputs(outputs)


def routed_predict(self: Any, data: Any, state: Any = None) -> Any:
    """`MLModel.predict` answered by the reference runtime (same arguments, same result)."""
    _notify_reach()
    type(self)._check_predict_data(data)
    runtime_model = runtime_model_for(self)
    if isinstance(data, dict):
        return _predict_one(self, runtime_model, data, state)
    if state is not None:
        raise ValueError("State can only be used for unbatched predictions (data is a list).")
    return [_predict_one(self, runtime_model, item, None) for item in data]


def routed_make_state(self: Any) -> Any:
    """`MLModel.make_state` answered by the reference runtime's `make_state()`."""
    _notify_reach()
    runtime_model = runtime_model_for(self)
    make_state = getattr(runtime_model, "make_state", None)
    if make_state is None:
        raise RuntimeUnavailableError(
            f"The reference runtime's {type(runtime_model).__name__} has no make_state(), "
            "so stateful models (iOS18 states) cannot run."
        )
    return make_state()


def route_predict() -> None:
    """Replace `MLModel.predict` and `MLModel.make_state` with the routed versions (idempotent)."""
    mlmodel_class = quiet_coremltools().models.MLModel
    for name, routed in (("predict", routed_predict), ("make_state", routed_make_state)):
        current = mlmodel_class.__dict__[name]
        if current is not routed:
            _originals.setdefault(name, current)
            setattr(mlmodel_class, name, routed)


def unroute_predict() -> None:
    """Put the original `MLModel.predict` and `make_state` back."""
    mlmodel_class = quiet_coremltools().models.MLModel
    for name, original in list(_originals.items()):
        setattr(mlmodel_class, name, original)
        del _originals[name]
