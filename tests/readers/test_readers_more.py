"""Readers on the files people really have: wrapped HTML, old Mac line ends, CRLF front
matter, pasted images, AES-encrypted PDFs, Word's tracked changes and content controls,
and short notes in a Windows codepage."""

from __future__ import annotations

import base64
import random

import pytest

from semsearch import Index
from semsearch.errors import DocumentError
from semsearch.readers import Document, read_document
from semsearch.readers.encoding import _detected
from semsearch.text.chunking import chunk_document
from tests.makedocs import write_pdf


def _read(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_document(path)


def _assert_lines_hold_the_text(document: Document, source: str) -> None:
    """Every chunk's first word is on its start line and its last word on its end line.

    The test pages use every word once, so finding a word on a line means that line holds it.
    """
    lines = source.splitlines()
    chunks = chunk_document(document)
    assert len(chunks) > 4
    for chunk in chunks:
        words = chunk.text.split()
        assert words[0] in lines[chunk.start_line - 1], (chunk.start_line, words[0])
        assert words[-1] in lines[chunk.end_line - 1], (chunk.end_line, words[-1])


# -- HTML line numbers -----------------------------------------------------------------------


def _wrapped_page() -> str:
    prose = [" ".join(f"p{n}w{k}" for k in range(9)) + ("." if n % 3 == 2 else "") for n in range(200)]
    prose[150] = "the turquoise walrus sings ballads"
    code = [f"    value_{n} = compute({n}) + offset  # step{n}" for n in range(200)]
    head = ["<!doctype html>", "<html><head><title>Wrapped</title></head>", "<body>", "<main><p>"]
    return "\n".join([*head, *prose, "</p><pre>", *code, "</pre></main>", "</body></html>"]) + "\n"


def test_html_chunks_in_wrapped_prose_and_pre_report_their_own_lines(tmp_path):
    source = _wrapped_page()
    _assert_lines_hold_the_text(_read(tmp_path, "wrapped.html", source), source)


def test_html_search_hit_in_a_long_paragraph_points_at_its_line(tmp_path, fake):
    source = _wrapped_page()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "wrapped.html").write_text(source)
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([tmp_path / "site"])
        hit = index.search("turquoise walrus ballads", limit=1)[0]
    lines = source.splitlines()
    assert "turquoise walrus" in "\n".join(lines[hit.start_line - 1 : hit.end_line])
    assert hit.start_line > 100  # not the line of the <p> that opens the paragraph


def test_html_crlf_and_cr_only_pages_count_lines_alike(tmp_path):
    source = _wrapped_page()
    for name, ending in [("crlf.html", "\r\n"), ("cr.html", "\r")]:
        document = _read(tmp_path, name, source.replace("\n", ending))
        _assert_lines_hold_the_text(document, source)


# -- CR-only line ends -----------------------------------------------------------------------


def _notes() -> str:
    paragraphs = []
    for n in range(150):
        paragraphs.append(f"n{n}a begins note {n} of the list, n{n}x.\nn{n}b goes on a little, n{n}c.")
    return "\n\n".join(paragraphs) + "\n"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_every_line_ending_gives_the_same_chunks_and_lines(tmp_path, ending):
    source = _notes()
    document = _read(tmp_path, "notes.txt", source.replace("\n", ending))
    _assert_lines_hold_the_text(document, source)
    reference = chunk_document(_read(tmp_path, "lf.txt", source))
    assert [(c.start_line, c.end_line) for c in chunk_document(document)] == [
        (c.start_line, c.end_line) for c in reference
    ]


def test_line_at_counts_a_lone_cr_and_a_crlf_as_one_line_end():
    document = Document("one\rtwo\r\nthree\nfour")
    assert [document.line_at(document.text.index(word)) for word in ("one", "two", "three", "four")] == [1, 2, 3, 4]
    # The characters of a line end belong to the line they end.
    assert document.line_at(document.text.index("\r\n")) == 2
    assert document.line_at(document.text.index("\r\n") + 1) == 2


def test_crlf_text_keeps_its_exact_offsets(tmp_path):
    source = _notes().replace("\n", "\r\n")
    document = _read(tmp_path, "windows.txt", source)
    assert document.text == source
    for chunk in chunk_document(document):
        assert chunk.start_line == source[: chunk.start].count("\n") + 1


# -- Markdown front matter -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"---\ntitle: Field notes\n---\nUsage\n-----\n\nmore\n",
        b"---\r\ntitle: Field notes\r\n---\r\nUsage\r\n-----\r\n\r\nmore\r\n",
        b"\xef\xbb\xbf---\r\ntitle: 'Field notes'\r\ndate: 2024-05-01\r\n---\r\nUsage\r\n-----\r\n\r\nmore\r\n",
        "---\ntitle: Field notes\n---\nUsage\n-----\n\nmore\n".encode("utf-16"),
    ],
)
def test_markdown_front_matter_with_any_line_ends_or_a_bom(tmp_path, data):
    document = _read(tmp_path, "note.md", data)
    assert document.title == "Field notes"
    # The closing "---" is not read as a setext underline of the front matter.
    assert [(s.level, s.title) for s in document.sections] == [(2, "Usage")]


# -- data: URIs ------------------------------------------------------------------------------


def _payload(size: int) -> str:
    return base64.b64encode(random.Random(3).randbytes(size)).decode()


def test_markdown_pasted_image_payload_is_not_indexed(tmp_path):
    payload = _payload(150_000)  # 200 KB of base64, as an exported screenshot
    source = (
        "# Trip\n\nWe left early on the blue train.\n\n"
        f"![photo](data:image/png;base64,{payload})\n\n"
        "## Arrival\n\nThe marmot colony waited by the lake.\n"
    )
    document = _read(tmp_path, "trip.md", source)
    assert payload[:40] not in document.text and len(document.text) < 200
    chunks = chunk_document(document)
    assert len(chunks) == 1
    after = document.text.index("marmot")
    assert document.section_at(after) == "Trip › Arrival"
    assert source.splitlines()[document.line_at(after) - 1] == "The marmot colony waited by the lake."


def test_wrapped_base64_keeps_its_line_breaks_so_later_lines_keep_their_numbers(tmp_path):
    payload = _payload(3000)
    wrapped = "\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    source = (
        "Intro line about the harbour.\n"
        f'<img alt="map" src="data:image/jpeg;base64,{wrapped}">\n'
        + "".join(f"Later line {n} speaks of gull{n} and tern{n}.\n" for n in range(120))
    )
    document = _read(tmp_path, "harbour.md", source)
    assert payload[:40] not in document.text and payload[-40:-4] not in document.text
    assert document.text.count("\n") == source.count("\n")
    _assert_lines_hold_the_text(document, source)
    for chunk in chunk_document(document):
        assert document.text[chunk.start : chunk.end] == chunk.text


def test_short_data_uris_and_prose_about_data_are_kept(tmp_path):
    text = "Metadata: image/png stays. A tiny data:text/plain,hi URI stays too.\n"
    assert _read(tmp_path, "prose.md", text).text == text


def test_text_and_html_drop_data_payloads_too(tmp_path):
    payload = _payload(2000)
    assert payload[:40] not in _read(tmp_path, "css.txt", f"background: url(data:image/png;base64,{payload});\n").text
    page = f"<html><body><main><pre>src = 'data:image/png;base64,{payload}'</pre><p>Caption.</p></main></body></html>"
    document = _read(tmp_path, "page.html", page)
    assert payload[:40] not in document.text and "Caption." in document.text


# -- PDF encryption --------------------------------------------------------------------------


def _encrypted(tmp_path, algorithm: str, user_password: str = ""):
    from pypdf import PdfWriter

    plain = write_pdf(tmp_path / "plain.pdf", [["The walrus inventory is due on Tuesday."]])
    writer = PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password=user_password, owner_password="o", algorithm=algorithm)
    path = tmp_path / f"{algorithm}.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_aes_pdf_that_opens_without_a_password_is_read(tmp_path, algorithm):
    assert "walrus inventory" in read_document(_encrypted(tmp_path, algorithm)).text


def test_aes_pdf_with_a_user_password_is_skipped_as_encrypted(tmp_path):
    with pytest.raises(DocumentError, match="^encrypted PDF$"):
        read_document(_encrypted(tmp_path, "AES-128", user_password="secret"))


def test_missing_aes_support_is_not_called_corrupt(tmp_path, monkeypatch):
    import pypdf._encryption
    from pypdf._crypt_providers import _fallback

    path = _encrypted(tmp_path, "AES-128")
    # What pypdf does when `cryptography` is not installed.
    for name in ("CryptAES", "aes_cbc_decrypt", "aes_ecb_decrypt", "aes_cbc_encrypt", "aes_ecb_encrypt"):
        monkeypatch.setattr(pypdf._encryption, name, getattr(_fallback, name))
    with pytest.raises(DocumentError) as caught:
        read_document(path)
    assert "corrupt" not in str(caught.value) and "cryptography" in str(caught.value)


# -- DOCX tracked changes and content controls -----------------------------------------------


def _contract(path):
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    change = 'w:author="A" w:date="2024-01-01T00:00:00Z"'
    document = docx.Document()
    document.add_heading("Contract", 1)
    rent = document.add_paragraph("The tenant pays ")
    deleted = "<w:r><w:delText>nine hundred</w:delText></w:r>"
    rent._p.append(parse_xml(f'<w:del {nsdecls("w")} w:id="1" {change}>{deleted}</w:del>'))
    rent._p.append(parse_xml(f'<w:ins {nsdecls("w")} w:id="2" {change}><w:r><w:t>eleven hundred</w:t></w:r></w:ins>'))
    rent.add_run(" euros monthly.")
    control = parse_xml(
        f'<w:sdt {nsdecls("w")}><w:sdtPr><w:alias w:val="Landlord"/></w:sdtPr><w:sdtContent>'
        '<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Landlord details</w:t></w:r></w:p>'
        '<w:p><w:r><w:t>Margarethe Quibble lives in Vienna.</w:t></w:r></w:p>'
        "</w:sdtContent></w:sdt>"
    )
    rent._p.addnext(control)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Deposit"
    cell = table.cell(0, 1).paragraphs[0]
    cell._p.append(parse_xml(f'<w:ins {nsdecls("w")} w:id="3" {change}><w:r><w:t>three months</w:t></w:r></w:ins>'))
    document.add_paragraph("Signed in duplicate.")
    document.save(str(path))
    return path


def test_docx_reads_insertions_and_content_controls_but_not_deletions(tmp_path):
    document = read_document(_contract(tmp_path / "contract.docx"))
    assert document.text == (
        "Contract\n\nThe tenant pays eleven hundred euros monthly.\n\nLandlord details\n\n"
        "Margarethe Quibble lives in Vienna.\n\nDeposit | three months\n\nSigned in duplicate."
    )
    assert [(s.level, s.title) for s in document.sections] == [(1, "Contract"), (2, "Landlord details")]
    assert document.section_at(document.text.index("Quibble")) == "Contract › Landlord details"


# -- short notes in a Windows codepage -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "codepage"),
    [
        ("We can’t ship on Friday.\n", "cp1252"),
        ("I’m late.", "cp1252"),
        ("I’m sure it’s Anna’s.", "cp1252"),
        ("Proszę kupić mleko.", "cp1250"),
        ("Děkuji, přijdu zítra.", "cp1250"),
        ("Dobrý den, jak se máte? Řekněte mi, kde je nádraží.", "cp1250"),
        ("Dzień dobry, proszę pana.", "iso8859_2"),
        ("Bună ziua, ce mai faceţi?", "cp1250"),
        ("Yarın toplantı saat üçte başlıyor.", "cp1254"),
        ("Selam, nasılsınız? Çok teşekkür ederim.", "cp1254"),
        # Kept working: Western European notes, and what the detector reads.
        ("Blåbærsyltetøy på brødskiva.", "cp1252"),
        ("café crème, 20°C, 5×3, 1990–2000, €20", "cp1252"),
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.", "koi8_r"),
        ("我们明天开会讨论这个项目的进展情况，请大家准时参加。", "gbk"),
    ],
)
def test_short_codepage_notes_read_without_mojibake(tmp_path, text, codepage):
    assert _read(tmp_path, "note.txt", text.encode(codepage)).text == text


def test_scattered_single_cjk_characters_in_ascii_text_are_not_trusted():
    # Shift-JIS pairs the stray 0x92 with the "m" after it: "I知 here".
    with pytest.raises(DocumentError, match="unknown text encoding"):
        _detected(b"I\x92m here")
    assert _detected("価格は100円です".encode("shift_jis")) == "価格は100円です"
