"""A project: the folder that holds recipes/ (and artifacts/), and every recipe in it, loaded or refused.

A recipe that cannot be loaded keeps its one-line errors (`Loaded.error`) instead of stopping
the others: each recipe's tasks stand or fail on their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from modelbuild.recipe import Recipe, RecipeError, load_recipe

ARTIFACTS = "artifacts"
RECIPES = "recipes"


@dataclass
class Loaded:
    """A recipe file with its validated Recipe, or the RecipeError it gave."""

    path: Path
    root: Path
    recipe: Recipe | None = None
    error: RecipeError | None = None

    @classmethod
    def load(cls, path: Path, root: Path) -> "Loaded":
        """Read and validate the recipe at `path`, keeping the error instead of raising it."""
        try:
            return cls(path, root, recipe=load_recipe(_shown(path)))
        except RecipeError as err:
            return cls(path, root, error=err)

    @classmethod
    def of(cls, recipe: Recipe, root: Path) -> "Loaded":
        """A Loaded for an already validated recipe (its file is not read again)."""
        return cls(root / RECIPES / f"{recipe.name}.yaml", root, recipe=recipe)

    @property
    def name(self) -> str:
        return self.recipe.name if self.recipe else self.path.stem

    @property
    def artifact_dir(self) -> Path:
        return _artifact_dir(self.root, self.name)


@lru_cache(maxsize=8)
def load_project(root: Path) -> tuple[Loaded, ...]:
    """Every recipe under root/recipes, sorted by file name; duplicate names are errors."""
    loaded = tuple(Loaded.load(path, root) for path in sorted((root / RECIPES).glob("*.yaml")))
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.recipe is not None:
            if item.name in seen:
                item.error = RecipeError([f"{item.path.relative_to(root)}:1: name: {item.name!r} is also the "
                                          f"name of {seen[item.name].relative_to(root)}; recipe names must be unique"])
                item.recipe = None
            else:
                seen[item.name] = item.path
    return loaded


@lru_cache(maxsize=None)
def _artifact_dir(root: Path, name: str) -> Path:
    return root / ARTIFACTS / name


def _shown(path: Path) -> Path:
    """`path` relative to the working folder when it is inside it: error lines read recipes/x.yaml:14."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
