"""torch::replace_modules and torch::set_attribute: edits of chosen submodules."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from modelbuild.patches.registry import TORCH_PATCHES, ModelPatch, PatchContext, PatchError
from modelbuild.patches.selection import (check_reference, describe_selection, model_summary, resolve,
                                          selected_modules)

if TYPE_CHECKING:
    from torch import nn

_NAMES = ("Globs on qualified module names as model.named_modules() gives them (e.g. 'encoder.layers.*'; "
          "'*' also matches dots); a module is chosen if any glob matches. Empty: every name.")


@TORCH_PATCHES.register
class ReplaceModules(ModelPatch):
    """Replace every module of a type by a new module from a factory.

    Given: features.3 = Hardswish(); classifier.1 = Hardswish()
    Result: features.3 = MyHardswish(); classifier.1 = MyHardswish()
            with type='torch.nn:Hardswish', factory='mypkg.mod:MyHardswish'
    Each replaced module gets its own new module, built as factory(**args) (a module registered
    under several names gets one, shared again); with copy_state the old module's parameters and
    buffers are loaded into it. Subclasses of type are replaced too; a module inside another one
    that is replaced goes with its parent. Refused when no module matches.
    """

    step: Literal["torch::replace_modules"] = "torch::replace_modules"
    type: str = Field(description="The class to replace, 'package.module:Class' (e.g. 'torch.nn:Hardswish').")
    factory: str = Field(description="What builds each replacement, 'package.module:attr', a class or function "
                                     "returning an nn.Module (e.g. 'torch.nn:Hardtanh').")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the factory.")
    names: list[str] = Field(default_factory=list, description=_NAMES)
    copy_state: bool = Field(False, description="Load each replaced module's state dict into its replacement "
                                                "(same parameter and buffer names and shapes).")

    @field_validator("type", "factory")
    @classmethod
    def _reference_syntax(cls, value: str) -> str:
        return check_reference(value, "torch.nn:Hardswish")

    def apply(self, model: nn.Module, context: PatchContext) -> nn.Module:
        from torch import nn

        old_class = resolve(self.type, f"{self.step} type", want_class=True)
        factory = resolve(self.factory, f"{self.step} factory")
        chosen = _outermost(selected_modules(model, self.names, old_class))
        if not chosen:
            raise PatchError(f"{self.step} found no {describe_selection(self.names, self.type)}; "
                             f"the model has {model_summary(model)}.")
        replacements: dict[int, nn.Module] = {}
        for name, old in chosen:
            if id(old) not in replacements:
                replacements[id(old)] = self._replacement(factory, old, name)
            if name == "":
                model = replacements[id(old)]
            else:
                model.set_submodule(name, replacements[id(old)])
        return model

    def _replacement(self, factory: Any, old: nn.Module, name: str) -> nn.Module:
        from torch import nn

        try:
            new = factory(**self.args)
        except Exception as err:  # user code: report whatever it raised
            raise PatchError(f"{self.step}: {self.factory}(**{self.args}) failed: {err}") from err
        if not isinstance(new, nn.Module):
            raise PatchError(f"{self.step}: {self.factory} returned {type(new).__name__}, not a torch.nn.Module.")
        if self.copy_state:
            try:
                new.load_state_dict(old.state_dict())
            except RuntimeError as err:
                raise PatchError(f"{self.step}: the state of {name or '(the model)'} does not fit "
                                 f"{type(new).__name__} (copy_state): {err}") from err
        return new.train(old.training)


def _outermost(chosen: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Drop modules that sit inside another chosen module (they are replaced with it)."""
    parents = [name for name, _ in chosen]
    return [(name, module) for name, module in chosen
            if not any(name != parent and (parent == "" or name.startswith(parent + ".")) for parent in parents)]


@TORCH_PATCHES.register
class SetAttribute(ModelPatch):
    """Set a plain attribute of the modules chosen by name and/or type.

    Given: up1 = Upsample(scale_factor=2, mode='bilinear', align_corners=None)
    Result: up1 = Upsample(scale_factor=2, mode='bilinear', align_corners=False)
            with type='torch.nn:Upsample', attribute='align_corners', value=false
    For flags read in forward (align_corners, inplace, approximate, a config switch). A list becomes
    a tuple and an integer a float where the attribute holds one. Refused when no module matches,
    when a chosen module has no such attribute, or when it is a parameter, buffer or submodule.
    """

    step: Literal["torch::set_attribute"] = "torch::set_attribute"
    attribute: str = Field(description="The attribute to set, e.g. 'align_corners'.")
    value: Any = Field(description="Its new value (a YAML scalar, list or mapping).")
    names: list[str] = Field(default_factory=list, description=_NAMES + " Give names, type or both.")
    type: str | None = Field(None, description="Only modules of this class, 'package.module:Class' "
                                               "(subclasses included).")

    @field_validator("type")
    @classmethod
    def _type_syntax(cls, value: str | None) -> str | None:
        return check_reference(value, "torch.nn:Upsample")

    @field_validator("attribute")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"expected an attribute name such as 'align_corners', got {value!r}")
        return value

    @model_validator(mode="after")
    def _some_selection(self) -> "SetAttribute":
        if not self.names and self.type is None:
            raise ValueError("give names (globs on module names), type (a module class) or both")
        return self

    def apply(self, model: nn.Module, context: PatchContext) -> nn.Module:
        module_type = resolve(self.type, f"{self.step} type", want_class=True) if self.type else None
        chosen = selected_modules(model, self.names, module_type)
        if not chosen:
            raise PatchError(f"{self.step} found no {describe_selection(self.names, self.type)}; "
                             f"the model has {model_summary(model)}.")
        lacking = [f"{name or '(the model)'} ({type(module).__name__})" for name, module in chosen
                   if not hasattr(module, self.attribute)]
        if lacking:
            raise PatchError(f"{self.step}: {_listed(lacking)} {'has' if len(lacking) == 1 else 'have'} no attribute "
                             f"{self.attribute!r}; choose modules that have it with names or type.")
        for name, module in chosen:
            kind = _managed_kind(module, self.attribute)
            if kind:
                raise PatchError(f"{self.step}: {self.attribute!r} of {name or '(the model)'} is a {kind}; "
                                 f"set_attribute sets plain attributes (flags, sizes, modes).")
        for _, module in chosen:
            setattr(module, self.attribute, _like(getattr(module, self.attribute), self.value))
        return model


def _managed_kind(module: Any, attribute: str) -> str:
    for kind, table in (("parameter", "_parameters"), ("buffer", "_buffers"), ("submodule", "_modules")):
        if attribute in getattr(module, table, {}):
            return kind
    return ""


def _like(current: Any, value: Any) -> Any:
    """`value` in the container/number type the attribute already holds (YAML has no tuples)."""
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _listed(items: list[str], limit: int = 6) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
