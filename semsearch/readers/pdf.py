"""PDF: the text layer page by page (pypdf), bookmarks as sections.

Each page's text starts at an offset recorded in `Document.pages`, so every chunk knows its
page. A PDF that needs a password is skipped, never cracked; one that opens without a
password (only its permissions are restricted, usually with AES) is read, as every viewer does.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from ..errors import DocumentError
from .base import Document, Section

EXTENSIONS = {".pdf"}

# pypdf reports recoverable damage through logging; a library must not print it.
logging.getLogger("pypdf").addHandler(logging.NullHandler())

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Fewer visible characters than this on every page: a scan, or an image-only export.
_MIN_TEXT = 16


def read_pdf(data: bytes, path: Path) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

    if b"%PDF-" not in data[:1024]:
        raise DocumentError("corrupt PDF")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except (NotImplementedError, PyPdfError):
                opened = False  # an unknown scheme
            if not opened:
                raise DocumentError("encrypted PDF")
        pages = list(reader.pages)
    except DocumentError:
        raise
    except DependencyError:
        raise _missing_dependency() from None
    except FileNotDecryptedError:
        raise DocumentError("encrypted PDF") from None
    except Exception:  # pypdf raises many kinds of errors on damaged files
        raise DocumentError("corrupt PDF") from None
    if not pages:
        raise DocumentError("corrupt PDF")
    texts = []
    failed = 0
    for page in pages:
        try:
            texts.append(_clean(page.extract_text() or ""))
        except DependencyError:
            raise _missing_dependency() from None
        except Exception:  # one damaged page must not lose the others
            texts.append("")
            failed += 1
    if failed == len(pages):
        raise DocumentError("corrupt PDF")
    if sum(len(t.strip()) for t in texts) < _MIN_TEXT:
        raise DocumentError("no text layer (scanned PDF?)")
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 2
    full = "\n\n".join(texts)
    return Document(full, format="pdf", title=_title(reader), sections=_outline(reader, full, starts), pages=starts)


def _missing_dependency() -> DocumentError:
    # pypdf needs `cryptography` for AES, the encryption of most PDFs today (even those that
    # open without a password). Without it the file is fine and semsearch is incomplete:
    # saying "corrupt" would send the user after the wrong problem.
    return DocumentError("encrypted PDF needs the 'cryptography' package")


def _clean(text: str) -> str:
    # Page texts end with stray spaces and newlines; inside, a form feed or NUL would
    # only confuse the chunker.
    return _CONTROL.sub("", text).strip()


def _title(reader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:
        return None
    title = (title or "").strip()
    # Titles such as "Microsoft Word - draft3.docx" name a file, not the document.
    if not title or re.match(r"^(Microsoft \w+ - |untitled)", title, re.IGNORECASE) or title.endswith((".doc", ".docx", ".pdf")):
        return None
    return title


def _outline(reader, text: str, starts: list[int]) -> list[Section]:
    """Bookmarks as sections: each starts where its title is printed on the page it points
    to, or at the top of that page."""
    sections: list[Section] = []

    def visit(items, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
                title = str(item.title).strip()
            except Exception:
                continue
            if title and page is not None and 0 <= page < len(starts):
                sections.append(Section(_heading_at(text, title, starts, page, sections), level, title))

    try:
        visit(reader.outline, 1)
    except Exception:  # a damaged outline only costs the sections
        return []
    # Document order; a stable sort keeps a chapter before its first subsection on one page.
    return sorted(sections, key=lambda s: s.start)


def _heading_at(text: str, title: str, starts: list[int], page: int, earlier: list[Section]) -> int:
    top = starts[page]
    end = starts[page + 1] if page + 1 < len(starts) else len(text)
    # Not before a bookmark already placed on this page: outlines list headings in order.
    begin = max([s.start for s in earlier if top <= s.start < end], default=top)
    words = [re.escape(word) for word in title.split()]
    match = re.compile(r"\s+".join(words), re.IGNORECASE).search(text, begin, end) if words else None
    if match is None:
        return top
    # From the start of its line, so the chunker cuts before the heading.
    return text.rfind("\n", top, match.start()) + 1 or top
