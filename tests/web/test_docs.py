"""The README stays a first screen, and every relative link in it and in docs/ resolves.

README.md is at most 300 lines. Every relative Markdown link and image in README.md and docs/*.md
points to a file that exists, and a ``#anchor`` names a heading of the target (GitHub's slug rules).
Links to other sites are not followed: no network.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 300

# [text](target) and ![alt](target), target up to the first space or closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of the file's lines outside fenced code blocks (code may hold brackets
    that are not links, and comments that are not headings)."""
    lines, in_code = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            lines.append((number, line))
    return lines


def _strip_code_spans(line: str) -> str:
    return re.sub(r"`[^`]*`", "", line)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for _number, line in _prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        found.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return frozenset(found)


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link and image in the file."""
    return [(number, target) for number, line in _prose_lines(path) for target in LINK.findall(_strip_code_spans(line))]


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # another site (https:, mailto:): not followed
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not destination.exists():
            problems.append(f"{path.name}:{number}: {target} -> no file {destination}")
            continue
        if anchor and destination.suffix == ".md" and unquote(anchor).lower() not in anchors(destination):
            problems.append(f"{path.name}:{number}: {target} -> no heading #{anchor} in {destination.name}")
    return problems


def test_readme_is_a_first_screen() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_docs_folder_exists() -> None:
    assert DOCS, "docs/*.md is missing"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_readme_shows_the_overview_and_the_wall() -> None:
    targets = {target for _, target in links(README)}
    assert {"docs/img/overview.png", "docs/img/wall.png"} <= targets


def test_readme_links_every_docs_page() -> None:
    targets = {target.partition("#")[0] for _, target in links(README)}
    missing = [p.name for p in DOCS if f"docs/{p.name}" not in targets]
    assert missing == []


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Control: start a failure, inject a fault", "control-start-a-failure-inject-a-fault"),
        ("GET /api/v1/groups", "get-apiv1groups"),
        ("The `rollup` task (hourly)", "the-rollup-task-hourly"),
        ("Worker status, group health, diagnosis", "worker-status-group-health-diagnosis"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "target.md").write_text("# Here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](target.md#here) [bad anchor](target.md#there) [gone](missing.md) ![img](img/x.png)\n"
        "```\n[in code](nowhere.md)\n```\n`[in a code span](nowhere.md)` [web](https://example.com/x)\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 3
    assert "#there" in problems[0] and "missing.md" in problems[1] and "img/x.png" in problems[2]
