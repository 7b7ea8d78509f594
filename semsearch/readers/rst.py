"""reStructuredText: underlined (and overlined) titles become sections."""

from __future__ import annotations

import re
from pathlib import Path

from .base import Document, Section, decode
from .datauri import without_data_payloads

EXTENSIONS = {".rst", ".rest"}

# Any non-alphanumeric printable character can underline a title.
_ADORNMENT = re.compile(r"""^([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])\1{2,}\s*$""")


def underlined_sections(text: str) -> list[Section]:
    """Titles underlined (optionally also overlined) with a row of punctuation, as in
    reStructuredText and many plain-text notes."""
    lines = text.splitlines(keepends=True)
    starts = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line)
    styles: list[tuple[str, bool]] = []  # level = order of first appearance, as docutils does
    sections = []
    i = 0
    while i < len(lines) - 1:
        title = lines[i].strip()
        under = _ADORNMENT.match(lines[i + 1].rstrip("\r\n"))
        over = i > 0 and _ADORNMENT.match(lines[i - 1].rstrip("\r\n"))
        if title and not _ADORNMENT.match(lines[i].rstrip("\r\n")) and under and len(lines[i + 1].strip()) >= len(title):
            overlined = bool(over and over.group(1) == under.group(1))
            style = (under.group(1), overlined)
            if style not in styles:
                styles.append(style)
            sections.append(Section(starts[i - 1] if overlined else starts[i], styles.index(style) + 1, title))
            i += 2
            continue
        i += 1
    return sections


def read_rst(data: bytes, path: Path) -> Document:
    text = without_data_payloads(decode(data))
    sections = underlined_sections(text)
    title = sections[0].title if sections else None
    return Document(text, format="rst", title=title, sections=sections)
