"""Markdown: headings (ATX and setext) become sections; fenced code is not a heading.

YAML front matter gives the title. Embedded images (`data:` URIs) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Document, Section, decode
from .datauri import without_data_payloads

EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd", ".mdx"}

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_TITLE = re.compile(r"^title:\s*['\"]?(.+?)['\"]?\s*$", re.MULTILINE)
# Front matter: between a first line "---" and the next line "---" (or YAML's "..."),
# with whatever line ends the file uses.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?:.*?\n)??(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def read_markdown(data: bytes, path: Path) -> Document:
    text = without_data_payloads(decode(data))
    title = None
    body_start = 0
    front = _FRONT_MATTER.match(text)
    if front:
        match = _FRONT_TITLE.search(text, 0, front.end())
        title = match.group(1) if match else None
        body_start = front.end()
    sections = []
    fence = None
    offset = 0
    previous: tuple[int, str] | None = None  # start and text of the previous non-blank line
    for line in text.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        if start < body_start:
            continue
        stripped = line.rstrip("\r\n")
        fence_match = _FENCE.match(stripped)
        if fence:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            previous = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            previous = None
            continue
        atx = _ATX.match(stripped)
        if atx:
            sections.append(Section(start, len(atx.group(1)), atx.group(2).strip()))
            previous = None
            continue
        setext = _SETEXT.match(stripped)
        if setext and previous is not None:
            level = 1 if setext.group(1)[0] == "=" else 2
            sections.append(Section(previous[0], level, previous[1]))
            previous = None
            continue
        previous = (start, stripped.strip()) if stripped.strip() and not stripped.startswith("    ") else None
    if title is None:
        title = next((s.title for s in sections if s.level == 1), None)
    return Document(text, format="markdown", title=title, sections=sections)
