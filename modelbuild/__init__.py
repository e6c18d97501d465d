"""modelbuild: declarative builds of ONNX and Core ML artifacts from PyTorch models."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_recipe", "__version__"]


def load_recipe(path):
    """Load and validate a recipe file; see `modelbuild.recipe.load_recipe`."""
    from modelbuild.recipe import load_recipe as _load  # pydantic: `import modelbuild.runtime` runs this file

    return _load(path)
