"""`ModelState`: what an iOS18 stateful model keeps between predictions (coremltools' `MLState`).

`Model.make_state()` gives a fresh one (zeros, as Core ML's `makeState`); every
`Model.predict(inputs, state=state)` reads the state's arrays and updates them in
place (`coreml_update_state`), so the next prediction with the same state sees the
new values, and two states of one model never share values. A state belongs to the
model that made it, as in Core ML: another model refuses it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from modelbuild.runtime.features import InputError


class ModelState:
    """Named state arrays of one model; `read_state` / `write_state` as coremltools' MLState."""

    def __init__(self, arrays: dict[str, np.ndarray], owner: object) -> None:
        self._arrays = arrays
        self._owner = owner

    @property
    def names(self) -> list[str]:
        return list(self._arrays)

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            raise InputError(f"The model has no state {name!r}; its states are: {', '.join(map(repr, self._arrays))}.")
        return self._arrays[name]

    def read_state(self, name: str) -> np.ndarray:
        """A copy of the state `name`'s current value."""
        return self._array(name).copy()

    def write_state(self, name: str, value: Any) -> None:
        """Overwrite the state `name` with `value` (same shape; converted to the state's dtype)."""
        array = self._array(name)
        value = np.asarray(value)
        if value.shape != array.shape:
            raise InputError(
                f"State {name!r} has shape {list(array.shape)}; write_state() was given shape {list(value.shape)}."
            )
        array[...] = value.astype(array.dtype)

    def arrays_for(self, owner: object) -> dict[str, np.ndarray]:
        """The live arrays, for the executor that made this state (and no other)."""
        if owner is not self._owner:
            raise InputError(
                "The state was made by another model's make_state(); pass state=model.make_state() "
                "of the model that predicts."
            )
        return self._arrays

    def __repr__(self) -> str:
        described = ", ".join(f"{name}: {a.dtype.name}{list(a.shape)}" for name, a in self._arrays.items())
        return f"<ModelState {described}>"
