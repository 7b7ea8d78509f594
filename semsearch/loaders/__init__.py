"""Readers: one small module per format, all returning a `Document`.

`read_document(path)` picks the reader by file name; a new format is a new module and a line
in `_READERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import DocumentError
from . import html, markdown, rst, text
from .base import Document, Section, decode

__all__ = ["Document", "Section", "decode", "read_document", "reader_for", "DocumentError"]

Reader = Callable[[bytes, Path], Document]

_READERS: dict[str, Reader] = {}
for _extensions, _reader in [
    (text.TEXT_EXTENSIONS, text.read_text),
    (text.CODE_EXTENSIONS, text.read_code),
    (markdown.EXTENSIONS, markdown.read_markdown),
    (rst.EXTENSIONS, rst.read_rst),
    (html.EXTENSIONS, html.read_html),
]:
    for _extension in _extensions:
        _READERS[_extension] = _reader


def reader_for(path: Path) -> Reader | None:
    """The reader for `path`, or None when semsearch does not index that kind of file."""
    if path.name in text.CODE_NAMES:
        return text.read_code
    return _READERS.get(path.suffix.lower())


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
    document = reader(data, path)
    if not document.text.strip():
        raise DocumentError("no text")
    return document
