"""References to Python objects in recipes: 'package.module:attr' strings, and importing what they name.

A model factory, a labels source and a patch's replacement module are all given this way.
Standard library only: the recipe schema checks the form, the build imports the object.
"""
from __future__ import annotations

import importlib
import re
from typing import Any

REFERENCE_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class ModelBuildError(RuntimeError):
    """The model, or an object the recipe names, could not be built as the recipe says (import, factory call,
    weights); the message starts with the recipe field."""


def import_object(reference: str, field: str = "model.factory") -> Any:
    """Import 'package.module:attr' (attr may be dotted) and return the object; a ModelBuildError names `field`."""
    module_name, _, attr = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelBuildError(f"{field}: cannot import module {module_name!r}: {err}") from None
    except Exception as err:  # the module is user code: a SyntaxError or an error it raises while importing
        raise ModelBuildError(f"{field}: importing module {module_name!r} failed: {type(err).__name__}: {err}"
                              ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelBuildError(f"{field}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def import_factory(factory: str) -> Any:
    """Import the model factory 'package.module:attr' and check that it can be called."""
    obj = import_object(factory)
    if not callable(obj):
        raise ModelBuildError(f"model.factory: {factory!r} is not a class or function")
    return obj
