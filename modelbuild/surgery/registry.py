"""Step registries: one per target format, decorator registration, a duplicate guard.

A surgery step is a pydantic model whose fields are the step's parameters and
whose `apply(model)` method performs the edit. The model's `step` field is a
`Literal` holding the step id (`onnx::rename_inputs`, `coreml::add_softmax`),
so a list of steps parses as a discriminated union on `step`, and the class
docstring ("Given: ... Result: ...") becomes the step's description in the
recipe JSON Schema.

    @ONNX_STEPS.register
    class RenameInputs(SurgeryStep):
        '''Given: ... Result: ...'''
        step: Literal["onnx::rename_inputs"] = "onnx::rename_inputs"
        names: dict[str, str] = Field(description="old name -> new name")

        def apply(self, model): ...

A registry imports the modules that define its steps when it is first asked for one,
and a step's validator is built when a recipe first uses it (`defer_build`): a recipe
field typed `Annotated[SurgeryStep, RegisteredStep(ONNX_STEPS)]` costs nothing until a
recipe lists a step, so loading recipes (and a no-op build) pays only for the steps used.

This module imports only pydantic: the recipe schema (and dodo.py) import the
step models without paying for onnx, coremltools or torch.
"""
from __future__ import annotations

import importlib
import typing
from typing import Annotated, Any, Callable, Iterable, Iterator, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, core_schema


class SurgeryError(Exception):
    """A surgery step cannot be applied to this model (the message says why and what would work)."""


class UnknownStepError(SurgeryError, KeyError):
    """A recipe names a step id that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class SurgeryStep(BaseModel):
    """Base class of every step: strict parameters, immutable, `apply(model) -> model`."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built when first validated

    step: str

    def apply(self, model: Any) -> Any:  # pragma: no cover - every step overrides it
        raise NotImplementedError(f"{type(self).__name__} does not implement apply().")


S = TypeVar("S", bound=type[SurgeryStep])


def step_id_of(step_class: type[SurgeryStep]) -> str:
    """The id held in the `Literal` annotation of the class's `step` field."""
    annotation = step_class.model_fields["step"].annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is not typing.Literal or len(args) != 1:
        raise TypeError(f"{step_class.__name__}.step must be annotated Literal['<target>::<name>'].")
    return str(args[0])


class StepRegistry:
    """Step id -> step class for one target format ('onnx', 'coreml'; 'torch' for model patches).

    `label` names the format and `noun` (`plural`) the kind of step in headings and messages
    ("Core ML surgery steps", "PyTorch model patches"); `modules` are the modules whose import
    registers the steps, imported when the registry is first asked for a step.
    """

    def __init__(self, target: str, label: str | None = None, noun: str = "surgery step",
                 plural: str | None = None, modules: tuple[str, ...] = ()) -> None:
        self.target = target
        self.label = label or target
        self.noun = noun
        self.plural = plural or f"{noun}s"
        self.modules = modules
        self._steps: dict[str, type[SurgeryStep]] = {}
        self._imported = not modules

    def _import_modules(self) -> None:
        if not self._imported:
            self._imported = True
            for module in self.modules:
                importlib.import_module(module)

    def register(self, step_class: S) -> S:
        """Class decorator: register a SurgeryStep subclass under the id in its `step` field."""
        step_id = step_id_of(step_class)
        if not step_id.startswith(f"{self.target}::"):
            raise ValueError(f"Step id {step_id!r} does not belong to the {self.target!r} registry "
                             f"(ids there start with '{self.target}::').")
        if step_id in self._steps:
            raise ValueError(f"{self.noun.capitalize()} {step_id!r} is registered twice "
                             f"({self._steps[step_id].__name__} and {step_class.__name__}).")
        if "Given:" not in (step_class.__doc__ or "") or "Result:" not in (step_class.__doc__ or ""):
            raise ValueError(f"{self.noun.capitalize()} {step_id!r} needs a 'Given: ... Result: ...' docstring.")
        for name, field in step_class.model_fields.items():
            if name != "step" and not field.description:
                raise ValueError(f"Parameter {name!r} of {self.noun} {step_id!r} needs a description.")
        self._steps[step_id] = step_class
        return step_class

    def get(self, step_id: str) -> type[SurgeryStep]:
        """The step class for `step_id`, or an UnknownStepError listing the available ids."""
        self._import_modules()
        try:
            return self._steps[step_id]
        except KeyError:
            raise UnknownStepError(
                f"Unknown {self.target} {self.noun} {step_id!r}. Available {self.target} steps: "
                f"{', '.join(self)}."
            ) from None

    def models(self) -> dict[str, type[SurgeryStep]]:
        """Step id -> parameter model (the step class), in id order."""
        return {step_id: self._steps[step_id] for step_id in self}

    def parse(self, raw: SurgeryStep | dict[str, Any]) -> SurgeryStep:
        """A step instance from a dict such as {'step': 'onnx::rename_inputs', 'names': {...}}."""
        if isinstance(raw, SurgeryStep):
            self.get(raw.step)
            return raw
        if not isinstance(raw, dict) or not isinstance(raw.get("step"), str):
            raise SurgeryError(f"A {self.noun} must be a mapping with a 'step' id; got {raw!r}.")
        step_class = self.get(raw["step"])
        try:
            return step_class.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'step'}: {error['msg']}"
                                 for error in exc.errors())
            raise SurgeryError(f"Invalid parameters for {self.noun} {raw['step']!r}: {problems}. "
                               f"Accepted parameters: {', '.join(step_class.model_fields)}.") from exc

    def validate(self, raw: Any) -> SurgeryStep:
        """A recipe field's validator (see RegisteredStep): the step, or pydantic errors by path below it."""
        if isinstance(raw, SurgeryStep) and raw.step in self and type(raw) is self.get(raw.step):
            return raw
        if not isinstance(raw, dict) or not isinstance(raw.get("step"), str):
            raise PydanticCustomError("step_missing", "expected a mapping with a 'step' id, one of {ids}",
                                      {"ids": ", ".join(self)})
        if raw["step"] not in self:
            raise PydanticCustomError("unknown_step", "unknown {noun} {step}; expected one of {ids}",
                                      {"noun": f"{self.label} {self.noun}", "step": repr(raw["step"]),
                                       "ids": ", ".join(self)})
        return self.get(raw["step"]).model_validate(raw)

    def __contains__(self, step_id: object) -> bool:
        self._import_modules()
        return step_id in self._steps

    def __iter__(self) -> Iterator[str]:
        self._import_modules()
        return iter(sorted(self._steps))

    def __len__(self) -> int:
        self._import_modules()
        return len(self._steps)


class RegisteredStep:
    """`Annotated` metadata of a recipe field that holds one step of `registry`, validated by its id.

    Unlike a discriminated union of every step model, nothing is built until a recipe lists a
    step; the JSON Schema (editors, docs) is still the tagged union of all of them.
    """

    def __init__(self, registry: StepRegistry) -> None:
        self.registry = registry

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.registry.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        union = Annotated[Union[tuple(self.registry.models().values())], Field(discriminator="step")]
        return handler(TypeAdapter(union).core_schema)


ONNX_STEPS = StepRegistry("onnx", "ONNX", modules=tuple(f"modelbuild.surgery.onnx_{name}" for name in
                                                    ("broadcast", "dtypes", "folding", "steps")))
COREML_STEPS = StepRegistry("coreml", "Core ML", modules=tuple(f"modelbuild.surgery.coreml_{name}" for name in
                                                             ("features", "layers", "weights")))
REGISTRIES = {registry.target: registry for registry in (ONNX_STEPS, COREML_STEPS)}


def registry_for(step_id: str) -> StepRegistry:
    """The registry whose ids share `step_id`'s 'target::' prefix."""
    target = step_id.split("::", 1)[0] if "::" in step_id else ""
    if target not in REGISTRIES:
        available = ", ".join(step for registry in REGISTRIES.values() for step in registry)
        raise UnknownStepError(
            f"Unknown surgery step {step_id!r}: ids start with 'onnx::' or 'coreml::'. "
            f"Available steps: {available}."
        )
    return REGISTRIES[target]


def parse_steps(steps: Iterable[SurgeryStep | dict[str, Any]]) -> list[SurgeryStep]:
    """Validate a list of steps (instances or dicts) against their registries."""
    parsed = []
    for raw in steps:
        step_id = raw.step if isinstance(raw, SurgeryStep) else raw.get("step") if isinstance(raw, dict) else None
        if not isinstance(step_id, str):
            raise SurgeryError(f"A surgery step must be a mapping with a 'step' id; got {raw!r}.")
        parsed.append(registry_for(step_id).parse(raw))
    return parsed


def apply_steps(model: Any, steps: Iterable[SurgeryStep | dict[str, Any]],
                on_step: Callable[[SurgeryStep, Any], None] | None = None) -> Any:
    """Apply `steps` in order and return the final model; each step returns a new model.

    `on_step(step, model_after)` is called after each step (logging, debugging).
    """
    for step in parse_steps(steps):
        model = step.apply(model)
        if on_step is not None:
            on_step(step, model)
    return model
