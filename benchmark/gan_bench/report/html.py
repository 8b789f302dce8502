"""A minimal HTML page of a rendered leaderboard (pure; no markdown library needed).

It converts only the subset `render` writes: headings, pipe tables, bullets (with an indented
image or note), paragraphs, **bold**, *emphasis*, `code`, ![alt](src) images and [text](href) links.
"""

from __future__ import annotations

import html
import re

__all__ = ["to_html"]

STYLE = ("body{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
         "padding:2px 6px;font-size:90%}th{background:#eee}img{max-width:100%}")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2">', out)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)  # e.g. [samples](...)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<i>\1</i>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(lines[0]))
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row)) + "</tr>"
                   for row in lines[2:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _blocks(markdown: str) -> list[list[str]]:
    """Blank-line separated blocks; a bullet's indented continuation stays with it."""
    blocks: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if not line.strip():
            blocks.append([])
        elif line.startswith("  ") and len(blocks) > 1 and not blocks[-1] and blocks[-2][0].startswith("- "):
            blocks.pop()
            blocks[-1].append(line)
        else:
            blocks[-1].append(line)
    return [b for b in blocks if b]


def to_html(markdown: str, title: str) -> str:
    """A standalone HTML page of `markdown` (as `render` writes it)."""
    parts = []
    for block in _blocks(markdown):
        first = block[0]
        if first.startswith("#"):
            level = len(first) - len(first.lstrip("#"))
            parts.append(f"<h{level}>{_inline(first[level:].strip())}</h{level}>")
        elif first.startswith("|"):
            parts.append(_table(block))
        elif first.startswith("- "):
            items: list[list[str]]
            current: list[str]
            items, current = [], []
            for line in block:
                if line.startswith("- ") and current:
                    items.append(current)
                    current = []
                current.append(line[2:] if line.startswith("- ") else line.strip())
            items.append(current)
            parts.append("<ul>" + "".join(f"<li>{' '.join(_inline(x) for x in it)}</li>"
                                          for it in items) + "</ul>")
        else:
            parts.append(f"<p>{_inline(' '.join(block))}</p>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
