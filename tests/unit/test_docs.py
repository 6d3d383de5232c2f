"""The documentation a newcomer and an operator follow: the README stays short, every relative link and anchor in the
Markdown leads somewhere, and every individual number shown in an example is one the edge accepts.

Defends against no attacker but against the operator under pressure (an incident, a restore) who follows a doc to a
file or section that is not there, or pastes an example that the CLI refuses.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.log.pseudonym import valid_individual_number

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MARKDOWN = sorted(
    {README, *REPO.glob("docs/*.md"), *REPO.glob("deploy/**/*.md"), *REPO.glob("tests/**/*.md")},
)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
NUMBER = re.compile(r"(?<![\w.:/-])\d{12}(?![\w.])")


def prose(text: str) -> str:
    """The text outside code, where Markdown links are links."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script kept), spaces → '-'."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    lines = FENCE.sub("", path.read_text(encoding="utf-8")).splitlines()
    return {slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


def relative_links(path: Path) -> list[str]:
    targets = LINK.findall(prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_readme_is_at_most_150_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move detail into docs/"


def test_the_readme_links_every_document_in_docs() -> None:
    linked = {Path(t.split("#")[0]).name for t in relative_links(README) if t.startswith("docs/")}
    missing = sorted(p.name for p in REPO.glob("docs/*.md") if p.name not in linked)
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{path.relative_to(REPO)}: {broken}"


def test_the_link_checker_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    """The checker above must be able to fail: a missing file and a missing heading are both found."""
    doc = tmp_path / "a.md"
    doc.write_text("# Top (上)\n\n[ok](#top-上) [gone](b.md) [`code`](a.md#nowhere) `[not a link](c.md)`\n")
    assert relative_links(doc) == ["#top-上", "b.md", "a.md#nowhere"]
    assert anchors(doc) == {"top-上"}
    assert not (tmp_path / "b.md").exists()


@pytest.mark.parametrize("path", [README, *sorted(REPO.glob("docs/*.md"))], ids=lambda p: p.name)
def test_every_individual_number_in_an_example_has_a_valid_check_digit(path: Path) -> None:
    numbers = NUMBER.findall(path.read_text(encoding="utf-8"))
    invalid = sorted({n for n in numbers if not valid_individual_number(n)})
    assert not invalid, f"{path.name}: {invalid} would be refused at the edge (check digit)"
