"""README.md and docs/*.md: every relative link (and image) resolves to a file, every #anchor to
a heading of its target (GitHub's slug rule), the README stays short, links every docs page and
keeps its two commands."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); text may hold one level of brackets (an image in a link)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
                  r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")  # an optional closing #-run
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def _outside_fences(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    out: list[tuple[int, str]] = []
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
            continue
        out.append((number, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading text: lowercase, strip, drop every character that is not
    alphanumeric, space, '-' or '_', spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w: unicode letters and digits, and '_'
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in _outside_fences(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2)))  # a link's text only
        count = seen.get(base, 0)
        out.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link and image outside code."""
    found = []
    for number, line in _outside_fences(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)):
            target = match.group(1).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            found.append((number, target))
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per link of `path` whose file or anchor does not exist."""
    problems = []
    for number, target in links(path):
        if not target or EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path.resolve()
        where = f"{path.relative_to(root)} line {number}: ({target})"
        shown = dest.relative_to(root) if dest.is_relative_to(root) else dest
        if not dest.exists():
            problems.append(f"{where}: no such file {shown}")
        elif anchor and dest.suffix.lower() == ".md" and unquote(anchor) not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{anchor} in {shown}")
    return problems


def test_slug_follows_githubs_rule():
    assert slug("Scaling out") == "scaling-out"
    assert slug("The calibration ladder: what a number means") == "the-calibration-ladder-what-a-number-means"
    assert slug("Calibrating data copying (C_T)") == "calibrating-data-copying-c_t"
    assert slug("Does searching lr_ratio and k help? (MNIST, `suites/mnist_cpu.yaml`)") == (
        "does-searching-lr_ratio-and-k-help-mnist-suitesmnist_cpuyaml")
    assert slug("GPU and performance ") == "gpu-and-performance"
    assert slug("a  b") == "a--b"  # GitHub does not collapse spaces


def test_duplicate_headings_get_numbered(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Setup\n\n```bash\n# Setup\n```\n\n## Setup\n\n### Setup\n")
    assert anchors(page) == {"notes", "setup", "setup-1", "setup-2"}


def test_the_checker_finds_broken_links(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n[ok](other.md#other-page) [self](#page) [web](https://x.org/#nope)\n"
                    "[gone](missing.md) [bad](other.md#nope) `[code](missing.md)`\n"
                    "![img](missing.png)\n\n```md\n[fenced](missing.md)\n```\n")
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 3, problems
    assert any("missing.md" in p for p in problems) and any("#nope" in p for p in problems)
    assert any("missing.png" in p for p in problems)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_resolve(page):
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


def test_docs_pages_exist():
    assert (DOCS / "README.md").exists() and len(PAGES) > 2


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


@pytest.mark.parametrize("page", PAGES[1:], ids=[str(p.relative_to(ROOT)) for p in PAGES[1:]])
def test_readme_links_every_docs_page(page):
    targets = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README)
               if t and not EXTERNAL.match(t) and not t.startswith("#")}
    assert page.resolve() in targets, f"README.md does not link {page.relative_to(ROOT)}"


def test_readme_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert any(re.search(r"^make demo\b", b, re.M) and re.search(r"^make test\b", b, re.M)
               for b in blocks), "README.md lost its ```bash block with `make demo` and `make test`"
