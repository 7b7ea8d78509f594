"""Plain text, CSV and JSON: the file is the text."""

from __future__ import annotations

from pathlib import Path

from .base import Document, decode
from .datauri import without_data_payloads
from .rst import underlined_sections

TEXT_EXTENSIONS = {".txt", ".text", ".log", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".org", ".tex"}

# Files without an extension that are text by convention.
TEXT_NAMES = {
    "README", "LICENSE", "LICENCE", "COPYING", "AUTHORS", "CHANGELOG", "CHANGES", "NEWS", "NOTICE",
    "TODO", "INSTALL", "CONTRIBUTING", "HISTORY",
}


def read_text(data: bytes, path: Path) -> Document:
    text = without_data_payloads(decode(data))
    # Plain-text notes often underline their headings the way reStructuredText does.
    sections = underlined_sections(text) if path.suffix.lower() in {".txt", ".text", ""} else []
    title = sections[0].title if sections and sections[0].start == 0 else None
    return Document(text, format="text", title=title, sections=sections)
