"""Recipes: YAML files that declare a model and the artifacts to build from it."""
from __future__ import annotations

from modelbuild.recipe.loader import RecipeError, load_recipe, project_root
from modelbuild.recipe.schema import Recipe


def recipe_json_schema() -> dict:
    """JSON Schema of recipe files, for editors (`python -m modelbuild schema`)."""
    schema = Recipe.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelbuild recipe"
    return schema


__all__ = ["Recipe", "RecipeError", "load_recipe", "project_root", "recipe_json_schema"]
