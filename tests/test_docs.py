"""README.md stays short and points into docs/; every link between the pages reaches a file and a heading."""
from __future__ import annotations

import re
from pathlib import Path

from projects import REPO

from modelbuild.recipe.reference import slug

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(page: Path) -> str:
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def _anchors(page: Path) -> set[str]:
    return {slug(heading) for heading in re.findall(r"^#+ (.*)$", _prose(page), re.M)}


def test_the_readme_keeps_the_two_commands_and_the_walk_through_in_about_250_lines():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "make build" in readme and "make test" in readme and "## Walk-through" in readme


def test_every_relative_link_reaches_a_file_and_a_heading():
    broken, checked = [], 0
    for page in PAGES:
        for target in LINK.findall(_prose(page)):
            if re.match(r"[a-z]+:", target):
                continue  # https://...: not ours to check offline
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            checked += 1
            if not linked.exists() or (anchor and anchor not in _anchors(linked)):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert checked > 40 and broken == []


def test_every_page_in_docs_is_linked_from_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [page.name for page in PAGES[1:] if f"](docs/{page.name})" not in readme] == []
