"""Writing real PDF and DOCX files in tests, so no binary fixture is committed.

PDFs are assembled with pypdf's writer (which also encrypts them); their pages hold
Helvetica text drawn by a content stream, as a word processor's export would, or only an
image, as a scanner's would.
"""

from __future__ import annotations

from pathlib import Path


def write_pdf(
    path: Path,
    pages: list[list[str]],
    *,
    title: str | None = None,
    outline: list[tuple[str, int]] = (),
    user_password: str | None = None,
    owner_password: str | None = None,
    scanned: bool = False,
) -> Path:
    """A PDF with one page per entry of `pages` (each a list of text lines).

    `outline` adds bookmarks (title, 0-based page). `scanned` draws an image instead of
    text on every page. A password encrypts the file (RC4, which pypdf writes without
    extra dependencies); an owner password alone restricts permissions only.
    """
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
        NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
    }))
    image = DecodedStreamObject()
    image.set_data(bytes([0, 128, 255, 64]) * 16)
    image.update({
        NameObject("/Type"): NameObject("/XObject"),
        NameObject("/Subtype"): NameObject("/Image"),
        NameObject("/Width"): NumberObject(8),
        NameObject("/Height"): NumberObject(8),
        NameObject("/ColorSpace"): NameObject("/DeviceGray"),
        NameObject("/BitsPerComponent"): NumberObject(8),
    })
    image_ref = writer._add_object(image)
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        content = DecodedStreamObject()
        if scanned:
            content.set_data(b"q 400 0 0 500 100 150 cm /Im1 Do Q")
            page[NameObject("/Resources")] = DictionaryObject({
                NameObject("/XObject"): DictionaryObject({NameObject("/Im1"): image_ref})
            })
        else:
            drawn = b"".join(b"(" + _escape(line) + b") Tj T* " for line in lines)
            content.set_data(b"BT /F1 11 Tf 14 TL 72 720 Td " + drawn + b"ET")
            page[NameObject("/Resources")] = DictionaryObject({
                NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})
            })
        page[NameObject("/Contents")] = writer._add_object(content)
    for heading, page_number in outline:
        writer.add_outline_item(title=heading, page_number=page_number)
    if title:
        writer.add_metadata({"/Title": title})
    if user_password is not None or owner_password is not None:
        writer.encrypt(user_password or "", owner_password, algorithm="RC4-128")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def _escape(line: str) -> bytes:
    return line.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def write_docx(path: Path, blocks: list[tuple[str, str]], *, title: str | None = None) -> Path:
    """A .docx from (kind, text) blocks: kind is "title", "h1".."h3", "p", or "table"
    (text: rows separated by newlines, cells by "|")."""
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for kind, text in blocks:
        if kind == "title":
            document.add_heading(text, 0)
        elif kind.startswith("h"):
            document.add_heading(text, int(kind[1:]))
        elif kind == "table":
            rows = [row.split("|") for row in text.splitlines()]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for cells, row in zip(rows, table.rows):
                for value, cell in zip(cells, row.cells):
                    cell.text = value.strip()
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path
