"""Word (.docx): body paragraphs and tables in order (python-docx); headings become sections.

Headers, footers and comments are left out: they repeat on every page or are not the text.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from ..errors import DocumentError
from .base import Document, Section

EXTENSIONS = {".docx"}

# A password-protected .docx is not a zip but an OLE compound file holding the encrypted package.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|título|titolo)\s*(\d)$", re.IGNORECASE)
# More than this unpacked is a zip bomb, not a document.
_MAX_UNPACKED = 512 * 1024 * 1024


def read_docx(data: bytes, path: Path) -> Document:
    if data.startswith(_OLE_MAGIC):
        raise DocumentError("encrypted DOCX")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DocumentError("corrupt DOCX") from None
    if unpacked > _MAX_UNPACKED:
        raise DocumentError(f"corrupt DOCX (unpacks to {unpacked // 2**20} MB)")
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except Exception:  # python-docx and lxml raise many kinds of errors on damaged files
        raise DocumentError("corrupt DOCX") from None

    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    title = None
    for block in blocks:
        if hasattr(block, "rows"):
            text = _table_text(block)
            level = None
        else:
            text = block.text.strip()
            level = _heading_level(block)
        if not text:
            continue
        if level == 0:
            title = title or text
            level = 1
        if level:
            sections.append(Section(offset, level, " ".join(text.split())))
        parts.append(text)
        offset += len(text) + 2
    core_title = (document.core_properties.title or "").strip()
    title = core_title or title or (sections[0].title if sections else None)
    return Document("\n\n".join(parts), format="docx", title=title, sections=sections)


def _heading_level(paragraph) -> int | None:
    """0 for the Title style, 1–9 for headings (by style or outline level), else None."""
    try:
        style = paragraph.style
    except Exception:
        return None
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        style = style.base_style  # custom styles are often "based on Heading 2"
    outline = paragraph._p.xpath("./w:pPr/w:outlineLvl/@w:val")
    if outline and outline[0].isdigit() and int(outline[0]) < 9:
        return int(outline[0]) + 1
    return None


def _table_text(table) -> str:
    """One line per row, cells separated by " | "; merged cells counted once."""
    lines = []
    for row in table.rows:
        cells: list[str] = []
        seen = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        line = " | ".join(cells).strip(" |")
        if line:
            lines.append(line)
    return "\n".join(lines)
