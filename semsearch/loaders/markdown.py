"""Markdown: headings (ATX and setext) become sections; fenced code is not a heading."""

from __future__ import annotations

import re
from pathlib import Path

from .base import Document, Section, decode

EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd", ".mdx"}

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_TITLE = re.compile(r"^title:\s*['\"]?(.+?)['\"]?\s*$", re.MULTILINE)


def read_markdown(data: bytes, path: Path) -> Document:
    text = decode(data)
    title = None
    body_start = 0
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            match = _FRONT_TITLE.search(text, 4, end)
            title = match.group(1) if match else None
            body_start = end + 4
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
