"""The reference pages in docs/ are the ones generated from the schema and the step registries."""
from __future__ import annotations

import re
import subprocess
import sys
from typing import Any, Literal, Optional

import pytest
from projects import REPO

from modelbuild.patches import TORCH_PATCHES
from modelbuild.recipe import recipe_json_schema
from modelbuild.recipe.reference import RECIPE_PAGE, STEPS_PAGE, reference_pages, slug, type_name, write_pages
from modelbuild.recipe.schema import Recipe
from modelbuild.surgery import COREML_STEPS, ONNX_STEPS

STEP_MODELS = {**ONNX_STEPS.models(), **COREML_STEPS.models(), **TORCH_PATCHES.models()}
SCALARS = ("str", "int", "float", "bool", "None", "Any", "mapping", "ONNX surgery step", "Core ML surgery step",
           "PyTorch model patch")


def test_docs_reference_is_up_to_date():
    stale = [name for name, text in reference_pages().items()
             if (REPO / "docs" / name).read_text(encoding="utf-8") != text]
    assert stale == [], f"docs/{', docs/'.join(stale)} is stale: regenerate it with `make docs`"


def test_a_changed_description_or_docstring_makes_the_docs_stale(monkeypatch):
    """What the up-to-date test relies on: an edit of the schema shows in the generated pages."""
    committed = {name: (REPO / "docs" / name).read_text(encoding="utf-8") for name in reference_pages()}
    monkeypatch.setattr(Recipe.model_fields["name"], "description", "Renamed without make docs.")
    monkeypatch.setattr(STEP_MODELS["coreml::add_softmax"], "__doc__", "Given: a. Result: b.")
    pages = reference_pages()
    assert "| `name` | str | required | Renamed without make docs. |" in pages[RECIPE_PAGE]
    assert pages[RECIPE_PAGE] != committed[RECIPE_PAGE] and pages[STEPS_PAGE] != committed[STEPS_PAGE]


def test_make_docs_writes_the_pages_and_then_has_nothing_to_do(tmp_path):
    assert sorted(path.name for path in write_pages(tmp_path)) == sorted(reference_pages())
    assert write_pages(tmp_path) == []


@pytest.mark.parametrize(("annotation", "spelling"), [
    (str, "str"), (list[str], "list[str]"), (dict[str, str], "dict[str, str]"), (Optional[int], "int | None"),
    (float | None, "float | None"), (dict[int, list[int]] | None, "dict[int, list[int]] | None"),
    (dict[str, Any], "dict[str, Any]"), (Literal["int8", "uint8"], '"int8" | "uint8"'), (Literal[1, 2], "1 | 2"),
    (Optional[Literal["onnx", "torch"]], '"onnx" | "torch" | None'), (list[str] | dict[str, str],
                                                                      "list[str] | dict[str, str]"),
])
def test_every_type_has_one_spelling(annotation, spelling):
    assert type_name(annotation) == spelling


def test_a_type_without_a_spelling_is_refused():
    with pytest.raises(TypeError, match="no spelling for the type"):
        type_name(complex)


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| key |", "|---")):
            rows.append(re.split(r"(?<!\\)\|", line)[1:-1])
    return rows


def _spelled(text: str) -> str:
    """What is left of `text` after one type of the grammar: union := atom (' | ' atom)*,
    atom := scalar | "literal" | number | list[union] | dict[str|int, union]; raises if none starts it."""
    for scalar in SCALARS:
        if text.startswith(scalar):
            text = text[len(scalar):]
            break
    else:
        if match := re.match(r'"[^"]*"|-?\d+', text):
            text = text[match.end():]
        elif text.startswith("list["):
            text = _closing(_spelled(text[5:]))
        elif match := re.match(r"dict\[(str|int), ", text):
            text = _closing(_spelled(text[match.end():]))
        else:
            raise AssertionError(f"not a type: {text!r}")
    return _spelled(text[3:]) if text.startswith(" | ") else text


def _closing(text: str) -> str:
    assert text.startswith("]"), text
    return text[1:]


def test_every_table_spells_its_types_one_way():
    rows = [row for text in reference_pages().values() for row in _table_rows(text)]
    assert len(rows) > 150 and all(len(row) == 4 for row in rows), [row for row in rows if len(row) != 4]
    for row in rows:
        assert _spelled(row[1].strip().replace("\\|", "|")) == "", row
    with pytest.raises(AssertionError):
        _spelled("list of string")


def test_headings_descend_one_level_at_a_time():
    for name, text in reference_pages().items():
        levels = [len(m.group(1)) for m in re.finditer(r"^(#+) ", re.sub(r"```.*?```", "", text, flags=re.S), re.M)]
        assert levels[0] == 1 and levels.count(1) == 1, name
        assert all(after - before <= 1 for before, after in zip(levels, levels[1:])), name


def test_every_step_and_patch_is_a_subsection_with_its_parameters():
    text = reference_pages()[STEPS_PAGE]
    for registry in (ONNX_STEPS, COREML_STEPS, TORCH_PATCHES):
        section = text.split(f"\n## {registry.label} {registry.plural}\n", 1)[1].split("\n## ", 1)[0]
        for step_id, model in registry.models().items():
            step = section.split(f"\n### `{step_id}`\n", 1)[1].split("\n### ", 1)[0]
            assert "Given:" in step and "Result:" in step, step_id
            assert all(f"| `{name}` |" in step for name in model.model_fields if name != "step"), step_id
    assert '| `dtype` | "int8" \\| "uint8" \\| "int4" \\| "uint4" | `"int8"` |' in text
    assert "| `args` | dict[str, Any] | `{}` |" in text


def test_links_between_the_pages_reach_a_heading():
    pages = reference_pages()
    anchors = {name: {slug(heading) for heading in re.findall(r"^#+ (.*)$", text, re.M)}
               for name, text in pages.items()}
    links = [(name, target or name, fragment) for name, text in pages.items()
             for target, fragment in re.findall(r"\]\(([\w.-]*)#([\w-]+)\)", text)]
    assert len(links) > 20
    assert [link for link in links if link[2] not in anchors[link[1]]] == []


def test_rendering_the_reference_imports_neither_torch_nor_onnx_nor_coremltools():
    code = ("import sys; from modelbuild.recipe.reference import reference_pages; reference_pages(); "
            "print(sorted(m for m in ('onnx', 'coremltools', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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
