"""The front door and the manual: the README stays short, and every relative link in it and in
``docs/`` leads to a file that exists and, with an anchor, to a heading in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from challenges.config import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _prose(text: str) -> str:
    """The text without code: fenced blocks and lines indented as code."""
    text = FENCE.sub("", text)
    return "\n".join(line for line in text.splitlines() if not line.startswith("    "))


def slug(heading: str) -> str:
    """The anchor a Markdown heading gets (as the common renderers make it)."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", _prose(page.read_text(encoding="utf-8")), re.M)}


def links(page: Path) -> list[str]:
    return [
        t for t in LINK.findall(_prose(page.read_text(encoding="utf-8"))) if not re.match(r"^[a-z]+:", t)
    ]  # http:, https:, mailto: lead elsewhere


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(PROJECT_ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        if not found.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (found.suffix != ".md" or anchor not in anchors(found)):
            broken.append(f"{target}: no heading with this anchor")
    assert broken == []


def test_the_readme_is_a_front_door_of_at_most_150_lines():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert "    ./scripts/start\n" in readme and "    ./scripts/test\n" in readme


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A title\n\n[fine](#a-title) [gone](missing.md) [no heading](#nowhere)\n"
        "\n    [code](not-a-link.md)\n",
        encoding="utf-8",
    )
    assert links(page) == ["#a-title", "missing.md", "#nowhere"]
    assert anchors(page) == {"a-title"}
