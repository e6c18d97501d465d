"""The README's recipe reference is the one generated from the schema."""
from __future__ import annotations

import re

from projects import REPO

from modelbuild.recipe import recipe_json_schema
from modelbuild.recipe.reference import reference_markdown


def test_readme_reference_is_up_to_date():
    readme = (REPO / "README.md").read_text()
    embedded = re.search(r"<!-- recipe-reference:start[^>]*-->\n(.*)<!-- recipe-reference:end -->", readme, re.S)
    assert embedded, "README.md lacks the recipe-reference markers"
    assert embedded.group(1) == reference_markdown(), (
        "README.md's recipe reference is stale: regenerate it with `modelbuild schema --markdown`")


def test_every_field_is_documented():
    undocumented = []

    def walk(schema, path):
        for name, prop in schema.get("properties", {}).items():
            if name == "step" and "const" in prop:
                continue  # a surgery step's id: its docstring is the documentation
            if "description" not in prop:
                undocumented.append(f"{path}.{name}")
    definitions = recipe_json_schema()
    walk(definitions, "recipe")
    for name, definition in definitions["$defs"].items():
        walk(definition, name)
    assert undocumented == []
