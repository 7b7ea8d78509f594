"""Readers: one small module per format, all returning a `Document`; `walk` finds the files.

`read_document(path)` picks the reader by file name. A new format is a new module with
`EXTENSIONS` and a `read_...(data, path) -> Document` function, plus a line in `_READERS`;
a reader raises DocumentError with a short lowercase reason to skip a file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import DocumentError
from . import code, docx, html, markdown, pdf, rst, text
from .base import Document, Section, decode

__all__ = ["Document", "Section", "decode", "read_document", "reader_for", "DocumentError"]

Reader = Callable[[bytes, Path], Document]

_READERS: dict[str, Reader] = {}
for _extensions, _reader in [
    (text.TEXT_EXTENSIONS, text.read_text),
    (code.CODE_EXTENSIONS, code.read_code),
    (markdown.EXTENSIONS, markdown.read_markdown),
    (rst.EXTENSIONS, rst.read_rst),
    (html.EXTENSIONS, html.read_html),
    (pdf.EXTENSIONS, pdf.read_pdf),
    (docx.EXTENSIONS, docx.read_docx),
]:
    for _extension in _extensions:
        _READERS[_extension] = _reader


def reader_for(path: Path) -> Reader | None:
    """The reader for `path`, or None when semsearch does not index that kind of file."""
    return reader_for_name(path.name)


def reader_for_name(name: str) -> Reader | None:
    """The reader for a file of this name (see `reader_for`). String operations only: the
    walk asks once per file, and pathlib's suffixes cost more than the rest of the choice."""
    if name in code.CODE_NAMES:
        return code.read_code
    if name in text.TEXT_NAMES:
        return text.read_text
    # As pathlib's suffix: from the last dot, unless the name starts or ends there.
    dot = name.rfind(".")
    if not 0 < dot < len(name) - 1:
        return None
    suffix = name[dot:].lower()
    if suffix == ".txt":
        # Sphinx publishes its sources as "page.rst.txt" (and MyST's as "page.md.txt").
        parts = name.lstrip(".").split(".")
        inner = "." + parts[-2].lower() if len(parts) > 2 else ""
        if inner in {".rst", ".md", ".markdown"}:
            return _READERS[inner]
    return _READERS.get(suffix)


def read_document(path: Path, data: bytes | None = None) -> Document:
    """Read `path` (or its already-read bytes) into a Document.

    Raises DocumentError with a short reason when the file is not indexable text.
    """
    reader = reader_for(path)
    if reader is None:
        raise DocumentError("unsupported file type")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DocumentError(f"unreadable: {exc.strerror or exc}") from None
    if not data:
        raise DocumentError("empty file")
    document = reader(data, path)
    if not document.text.strip():
        raise DocumentError("no text")
    return document
