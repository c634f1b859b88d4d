"""The front door: a README of one screen or so, every page of docs/ one link away, and every
link in them (files and #anchors) leading somewhere."""

import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
PAGES = sorted((PROJECT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES, PROJECT / "embedded_es" / "README.md", PROJECT / "data" / "demo_model" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def links(path: Path) -> list[str]:
    """Link targets written in a Markdown file, outside code."""
    return LINK.findall(CODE.sub("", path.read_text()))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a file's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", CODE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_fits_on_a_screen_or_so() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    assert PAGES and [page.name for page in PAGES if page.resolve() not in linked] == []


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d.exists()], ids=lambda p: str(p.relative_to(PROJECT)))
def test_every_link_resolves(document: Path) -> None:
    broken = []
    for target in links(document):
        if re.match(r"[a-z]+:", target):  # web addresses: not reachable from here
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    assert broken == []


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[fine](#title) [gone](missing.md) [no anchor](#nowhere) `[code](skipped.md)`\n")
    assert links(page) == ["#title", "missing.md", "#nowhere"]
    assert anchors(page) == {"title"}
