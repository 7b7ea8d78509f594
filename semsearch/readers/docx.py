"""Word (.docx): body paragraphs and tables in order (python-docx); headings become sections.

The text is what Word shows with tracked changes accepted: insertions are read, deletions
are not, and content controls (the boxes of forms and templates) are read like the text
around them. Headers, footers and comments are left out: they repeat on every page or are
not the text.
"""

from __future__ import annotations

import functools
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

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_NAMESPACES = {"w": _W, "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}
_PARAGRAPH, _TABLE, _ROW, _CELL = f"{{{_W}}}p", f"{{{_W}}}tbl", f"{{{_W}}}tr", f"{{{_W}}}tc"
_CONTENT_CONTROL, _CONTENT, _CUSTOM_XML = f"{{{_W}}}sdt", f"{{{_W}}}sdtContent", f"{{{_W}}}customXml"
# Runs inside a deletion or a move's old place are not shown once changes are accepted; a
# text box's paragraphs are its own (and repeated in its fallback picture).
_VISIBLE_RUNS = (
    ".//w:r[not(ancestor::w:del) and not(ancestor::w:moveFrom) and not(ancestor::w:txbxContent)"
    " and not(ancestor::mc:Fallback)]"
)


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
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_blocks(document.element.body))
    except Exception:  # python-docx and lxml raise many kinds of errors on damaged files
        raise DocumentError("corrupt DOCX") from None

    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    title = None
    for block in blocks:
        if block.tag == _TABLE:
            text = _table_text(Table(block, document._body))
            level = None
        else:
            text = _paragraph_text(block).strip()
            level = _heading_level(Paragraph(block, document._body))
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


def _blocks(container):
    """The paragraphs and tables of a body or table cell, in order, including those inside
    content controls (`w:sdt`) and custom XML, which python-docx does not look into."""
    for child in container.iterchildren():
        if child.tag in (_PARAGRAPH, _TABLE):
            yield child
        elif child.tag == _CONTENT_CONTROL:
            content = child.find(_CONTENT)
            if content is not None:
                yield from _blocks(content)
        elif child.tag == _CUSTOM_XML:
            yield from _blocks(child)


def _paragraph_text(paragraph) -> str:
    """The visible text of a `w:p`: its runs at any depth (in hyperlinks, fields, inserted
    text, inline content controls), but not deleted or moved-away text, and not the
    paragraphs of text boxes anchored in it."""
    # python-docx's element class for a run gives its text, with tabs and breaks.
    return "".join(run.text for run in _visible_runs()(paragraph))


@functools.cache
def _visible_runs():
    from lxml import etree

    return etree.XPath(_VISIBLE_RUNS, namespaces=_NAMESPACES)


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
            cells.append(" ".join(_cell_text(cell._tc).split()))
        line = " | ".join(cells).strip(" |")
        if line:
            lines.append(line)
    return "\n".join(lines)


def _cell_text(cell) -> str:
    texts: list[str] = []
    for block in _blocks(cell):
        if block.tag == _TABLE:
            texts.extend(_cell_text(inner) for row in block.iterchildren(_ROW) for inner in row.iterchildren(_CELL))
        else:
            texts.append(_paragraph_text(block))
    return "\n".join(texts)
