"""Real-world formats: PDF, DOCX, HTML boilerplate, code structure, encodings, CSV and JSON.

Every PDF and DOCX is written by the test itself (tests/makedocs.py).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.errors import DocumentError
from semsearch.readers import read_document
from semsearch.text.chunking import chunk_document
from tests.makedocs import write_docx, write_pdf


def _read(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_document(path)


# -- PDF -------------------------------------------------------------------------------------


def _filler(topic: str, lines: int = 14) -> list[str]:
    """About a page of prose (~250 tokens), so chunks follow pages as in a real document."""
    return [f"Line {n} of the notes on {topic} goes on for a while, as printed text does." for n in range(lines)]


def test_pdf_text_per_page_with_bookmarks_as_sections(tmp_path):
    path = write_pdf(
        tmp_path / "birds.pdf",
        [
            ["Herons", "The grey heron stands ankle deep in the cold river.", "Café au lait (with froth) at dawn."]
            + _filler("herons"),
            ["Gulls", "Gulls follow the ferry all the way to the island.", *_filler("gulls")],
            ["Owls", "Owls hunt at night.", "Their feathers are silent.", *_filler("owls")],
        ],
        title="Field guide",
        outline=[("Herons", 0), ("Gulls", 1), ("Owls", 2)],
    )
    document = read_document(path)
    assert document.format == "pdf" and document.title == "Field guide"
    assert "Café au lait (with froth) at dawn." in document.text
    assert document.page_at(document.text.index("heron stands")) == 1
    assert document.page_at(document.text.index("ferry")) == 2
    assert document.page_at(document.text.index("silent")) == 3
    assert document.section_at(document.text.index("ferry")) == "Gulls"
    chunks = chunk_document(document)
    assert {chunk.page for chunk in chunks} == {1, 2, 3}


def test_each_slide_of_a_deck_is_found_on_its_own_page(tmp_path):
    """Short pages (slides) are not merged into one chunk: a hit's page is where its text is."""
    topics = ["Customer churn analysis", "Quarterly revenue bridge", "Hiring plan for Berlin", "Cloud cost savings"]
    slides = [[title, f"First point about {title.lower()}.", "A second point.", "A third point."] for title in topics]
    document = read_document(write_pdf(tmp_path / "deck.pdf", slides))
    chunks = chunk_document(document)
    for number, title in enumerate(topics, 1):
        holding = [chunk for chunk in chunks if title in document.text[chunk.start:chunk.end]]
        assert [chunk.page for chunk in holding] == [number], (title, [(c.page, c.start) for c in holding])


def test_pdf_bookmark_starts_at_its_heading_on_the_page(tmp_path):
    path = write_pdf(
        tmp_path / "two.pdf",
        [["Intro", "Opening words.", "Details", "The fine print is here."]],
        outline=[("Intro", 0), ("Details", 0)],
    )
    document = read_document(path)
    assert document.section_at(document.text.index("Opening")) == "Intro"
    assert document.section_at(document.text.index("fine print")) == "Details"


def test_pdf_with_only_permissions_restricted_is_read(tmp_path):
    path = write_pdf(tmp_path / "locked.pdf", [["Printing is not allowed, reading is."]], owner_password="owner")
    assert "reading is" in read_document(path).text


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("password", "encrypted PDF"), ("scanned", "no text layer (scanned PDF?)"), ("truncated", "corrupt PDF"),
     ("garbage", "corrupt PDF"), ("not a pdf", "corrupt PDF")],
)
def test_unreadable_pdfs_say_why(tmp_path, kind, reason):
    path = tmp_path / f"{kind}.pdf"
    if kind == "password":
        write_pdf(path, [["Top secret plans."]], user_password="hunter2")
    elif kind == "scanned":
        write_pdf(path, [[], []], scanned=True)
    else:
        write_pdf(path, [["Some words on a page that will be damaged."]])
        data = path.read_bytes()
        path.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"%PDF-1.7\n" + bytes(range(256)) * 8,
                          "not a pdf": b"<html>this was saved with the wrong name</html>"}[kind])
    with pytest.raises(DocumentError) as caught:
        read_document(path)
    assert str(caught.value) == reason


# -- DOCX ------------------------------------------------------------------------------------


def test_docx_paragraphs_headings_and_tables(tmp_path):
    path = write_docx(
        tmp_path / "report.docx",
        [
            ("title", "Annual report"),
            ("h1", "Finances"),
            ("p", "Revenue grew by the quokka margin this year."),
            ("h2", "Costs"),
            ("p", "Office rent stayed flat."),
            ("table", "Item | Cost\nRent | 12000\nCoffee | 800"),
            ("h1", "Outlook"),
            ("p", "We expect calmer seas."),
        ],
        title="Report 2024",
    )
    document = read_document(path)
    assert document.format == "docx" and document.title == "Report 2024"
    assert "Revenue grew by the quokka margin this year.\n\nCosts" in document.text
    assert "Rent | 12000\nCoffee | 800" in document.text
    assert document.section_at(document.text.index("Coffee")) == "Finances › Costs"
    assert document.section_at(document.text.index("calmer")) == "Outlook"


def test_docx_title_falls_back_to_the_title_paragraph(tmp_path):
    path = write_docx(tmp_path / "memo.docx", [("title", "Memo on parking"), ("p", "Park behind the bakery.")])
    assert read_document(path).title == "Memo on parking"


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"PK\x03\x04 not really a zip", "corrupt DOCX"),
     (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "encrypted DOCX"),
     (b"plain text saved as docx", "corrupt DOCX")],
)
def test_unreadable_docx_say_why(tmp_path, content, reason):
    with pytest.raises(DocumentError, match=f"^{reason}$"):
        _read(tmp_path, "bad.docx", content)


# -- HTML ------------------------------------------------------------------------------------

SPHINX_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8" /><title>shutil — High-level file operations</title>
<script src="_static/jquery.js"></script></head>
<body>
<div class="related" role="navigation"><h3>Navigation</h3><ul><li><a href="genindex.html">index</a></li>
<li><a href="os.html">previous</a> |</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper">
<div class="body" role="main">
<section id="shutil"><h1>shutil — High-level file operations<a class="headerlink" href="#shutil">¶</a></h1>
<p>The shutil module offers high-level operations on files, such as copying and removal.</p>
<section id="directory"><h2>Directory operations<a class="headerlink" href="#d">¶</a></h2>
<dl><dt>shutil.copytree(src, dst)</dt><dd><p>Recursively copy an entire directory tree rooted at src.</p></dd></dl>
<table><tr><td>copy</td><td>copy2</td></tr></table>
</section></section></div></div></div>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3><p>This Page: Report a Bug</p>
<div id="searchbox" role="search"><form><input type="text" name="q" /></form></div></div>
</div>
<div class="footer">© Copyright 2001-2023, Python Software Foundation.</div>
</body></html>
"""


def test_html_sphinx_page_keeps_the_main_content_only(tmp_path):
    document = _read(tmp_path, "shutil.html", SPHINX_PAGE)
    assert document.title == "shutil — High-level file operations"
    for chrome in ("Navigation", "previous", "Table of Contents", "Report a Bug", "Copyright", "¶", "jquery"):
        assert chrome not in document.text
    assert document.text.startswith("shutil — High-level file operations\n\nThe shutil module offers")
    assert "copy copy2" in document.text
    assert document.section_at(document.text.index("Recursively")) == (
        "shutil — High-level file operations › Directory operations"
    )


def test_html_without_main_drops_hidden_and_chrome(tmp_path):
    page = (
        "<html><head><title>Blog</title></head><body>"
        "<header class='site-header'><a>Home</a> <a>About</a></header>"
        "<div class='cookie-banner'>We use cookies</div><div hidden>secret draft</div>"
        "<span aria-hidden='true'>icon</span><div style='display: none'>invisible</div>"
        "<article><h1>Sourdough</h1><p>Feed the starter every morning.</p></article>"
        "<aside role='complementary'>Popular posts</aside></body></html>"
    )
    document = _read(tmp_path, "post.html", page)
    assert document.text == "Sourdough\n\nFeed the starter every morning."


def test_html_declared_latin1_charset(tmp_path):
    page = '<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head><body><p>Cr\xe8me br\xfbl\xe9e</p></body></html>'
    document = _read(tmp_path, "menu.html", page.encode("latin-1"))
    assert document.title == "Café" and document.text == "Crème brûlée"


# -- source code -----------------------------------------------------------------------------

PYTHON = '''"""Tools."""

import os


@cache
def load(path):
    return open(path).read()


class Store:
    """Keeps things."""

    def add(self, item):
        self.items.append(item)

    async def remove(self, item):
        self.items.remove(item)


CONSTANT = 1
'''


def test_python_definitions_are_sections_with_exact_lines(tmp_path):
    document = _read(tmp_path, "tools.py", PYTHON)
    assert [(s.level, s.title) for s in document.sections] == [
        (1, "def load"), (1, "class Store"), (2, "def add"), (2, "def remove"),
    ]
    assert document.text[document.sections[0].start:].startswith("@cache")
    assert document.section_at(document.text.index("self.items.remove")) == "class Store › def remove"
    assert document.section_at(document.text.index("CONSTANT")) == "class Store › def remove"  # no section ends
    for chunk in chunk_document(document):
        assert chunk.start_line == document.text[: chunk.start].count("\n") + 1
        assert chunk.end_line == document.text[: chunk.end].count("\n") + 1


def test_braced_languages_top_level_definitions(tmp_path):
    source = (
        "package main\n\nimport \"fmt\"\n\nfunc (s *Server) Start(port int) error {\n\treturn nil\n}\n\n"
        "type Config struct {\n\tPort int\n}\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n"
    )
    document = _read(tmp_path, "main.go", source)
    assert [s.title for s in document.sections] == ["func Start", "type Config", "func main"]
    script = "export async function fetchUser(id) {\n  return id;\n}\n\nexport default class Cart {\n}\n"
    assert [s.title for s in _read(tmp_path, "api.js", script).sections] == ["function fetchUser", "class Cart"]


def test_long_code_is_cut_at_definitions(tmp_path):
    body = "".join(f"    value_{i} = compute({i}) + offset * {i}\n" for i in range(20))
    source = "".join(f"def step_{n}(offset):\n{body}    return value_0\n\n\n" for n in range(4))
    document = _read(tmp_path, "steps.py", source)
    chunks = chunk_document(document)
    # Each function is one chunk of its own, labelled with its name.
    assert [(chunk.text.split("(")[0], chunk.section) for chunk in chunks] == [
        (f"def step_{n}", f"def step_{n}") for n in range(4)
    ]


def test_minified_code_is_skipped(tmp_path):
    bundle = "var a=" + ",".join(f"f{i}=function(x){{return x*{i}}}" for i in range(400)) + ";\n"
    with pytest.raises(DocumentError, match="^minified or generated code$"):
        _read(tmp_path, "app.min.js", bundle)
    assert _read(tmp_path, "app.js", bundle[:3000]).code  # a long line alone is not minified


# -- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "text"),
    [
        ("latin1.txt", "Grüße aus Köln, schöne Straße.".encode("latin-1"), "Grüße aus Köln, schöne Straße."),
        ("cp1252.txt", "“Quotes” – and 5 € please".encode("cp1252"), "“Quotes” – and 5 € please"),
        ("french.txt", "Le cœur a ses raisons que la raison ne connaît point.".encode("cp1252"),
         "Le cœur a ses raisons que la raison ne connaît point."),
        ("utf16bom.txt", "UTF-16 mit BOM: Übergrößenträger".encode("utf-16"), "UTF-16 mit BOM: Übergrößenträger"),
        ("utf16le.txt", "UTF-16 without a byte order mark".encode("utf-16-le"), "UTF-16 without a byte order mark"),
        ("utf16be.txt", "UTF-16 big endian, no mark at all".encode("utf-16-be"), "UTF-16 big endian, no mark at all"),
        ("russian.txt", "Привет, как дела? Это текст в кодировке Windows-1251.".encode("cp1251"),
         "Привет, как дела? Это текст в кодировке Windows-1251."),
        ("polish.txt", "Zażółć gęślą jaźń. Próba tekstu w języku polskim, który ma wiele znaków.".encode("cp1250"),
         "Zażółć gęślą jaźń. Próba tekstu w języku polskim, który ma wiele znaków."),
        ("japanese.txt", "これは日本語のテキストです。文字コードはシフトJISです。".encode("shift_jis"),
         "これは日本語のテキストです。文字コードはシフトJISです。"),
        ("damaged.txt", "Grüße, ein kaputtes Byte: ".encode() + b"\xff" + " und weiter, schön.".encode(),
         "Grüße, ein kaputtes Byte: \ufffd und weiter, schön."),
        # ASCII with a stray byte: no codepage makes a word of it, so UTF-8 with the damage marked.
        ("ascii-damaged.txt", b"There are seventeen marmot burrows \xc3 here.\n", "There are seventeen marmot burrows \ufffd here.\n"),
        ("ascii-junk.txt", b"Log line one.\nA stray \x81\x8d pair of bytes.\n", "Log line one.\nA stray \ufffd\ufffd pair of bytes.\n"),
        # ... while real Latin-1 and Windows-1252 text, with words, dashes and quotes, is read as such.
        ("french.txt", "Je vais à Paris, au café.".encode("latin-1"), "Je vais à Paris, au café."),
        ("dash.txt", "The budget – agreed “at last” for 5 €.".encode("cp1252"), "The budget – agreed “at last” for 5 €."),
    ],
)
def test_text_in_common_encodings_is_decoded_without_mojibake(tmp_path, name, data, text):
    assert _read(tmp_path, name, data).text == text


@pytest.mark.parametrize(
    "data",
    [random.Random(7).randbytes(5000), bytes(b for b in random.Random(8).randbytes(9000) if b)[:5000],
     gzip.compress(b"compressed text " * 500), bytes(range(128, 256)) * 20],
)
def test_binary_junk_with_a_text_name_is_skipped(tmp_path, data):
    with pytest.raises(DocumentError, match="^binary file$"):
        _read(tmp_path, "junk.txt", data)


def test_empty_file_is_skipped(tmp_path):
    with pytest.raises(DocumentError, match="^empty file$"):
        _read(tmp_path, "empty.md", b"")


# -- CSV, JSON, names ------------------------------------------------------------------------


def test_csv_json_and_conventional_names_are_text(tmp_path):
    assert "Oslo,Norway" in _read(tmp_path, "cities.csv", "city,country\nOslo,Norway\n").text
    assert '"kiwi": 3' in _read(tmp_path, "fruit.json", '{"kiwi": 3}').text
    assert _read(tmp_path, "README", "Read me first.").format == "text"
    assert _read(tmp_path, "page.rst.txt", "Title\n=====\n\nBody.\n").format == "rst"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("notes.txt", "text"), ("NOTES.TXT", "text"), ("page.rst.txt", "rst"), ("page.MD.txt", "markdown"),
        ("notes.markdown.txt", "markdown"), ("x.txt.md", "markdown"), ("rst.txt", "text"), (".rst.txt", "text"),
        ("a.b.c.md", "markdown"), ("..py", "code"), ("tool.PY", "code"), ("Makefile", "code"), ("README", "text"),
        (".bashrc", None), ("a.", None), ("a.md.", None), ("...", None), ("archive.tar.gz", None), ("photo.jpg", None),
    ],
)
def test_the_reader_is_chosen_by_the_name_as_pathlib_splits_it(name, kind):
    from semsearch.readers import code, markdown, reader_for, reader_for_name, rst, text

    expected = {"text": text.read_text, "rst": rst.read_rst, "markdown": markdown.read_markdown, "code": code.read_code, None: None}[kind]
    assert reader_for_name(name) is expected
    assert reader_for(Path("/some/folder") / name) is expected


# -- through the index -----------------------------------------------------------------------


def test_every_format_is_found_by_its_phrase(tmp_path, fake):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_pdf(folder / "manual.pdf", [["Cover page", *_filler("the cover")], ["Installation", "Calibrate the flux capacitor weekly."]],
              outline=[("Installation", 1)])
    write_docx(folder / "minutes.docx", [("h1", "Decisions"), ("p", "The board approved the marmalade budget.")])
    (folder / "page.html").write_text(
        "<html><head><title>Ferries</title></head><body><nav>Home</nav><main><h1>Timetable</h1>"
        "<p>The turquoise ferry leaves at noon.</p></main></body></html>"
    )
    (folder / "notes.md").write_text("# Garden\n\n## Compost\n\nTurn the wormery compost monthly.\n")
    intro = " ".join(_filler("instruments", 6))
    (folder / "guide.rst").write_text(f"Guide\n=====\n\n{intro}\n\nTuning\n------\n\nTighten the zither strings slowly.\n")
    (folder / "legacy.txt").write_bytes("Die Brötchen vom Bäcker sind knusprig.".encode("latin-1"))
    (folder / "data.csv").write_text("animal,sound\naardvark,snuffle\n")
    (folder / "config.json").write_text('{"wombat_mode": "enabled"}\n')
    (folder / "tool.py").write_text("def frobnicate_widgets(count):\n    return count * 2\n")
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        stats = index.add([folder])
        assert stats.skipped == [] and stats.new == 9
        expected = {
            "flux capacitor calibrate": ("manual.pdf", 2, "Installation"),
            "marmalade budget approved": ("minutes.docx", None, "Decisions"),
            "turquoise ferry noon": ("page.html", None, "Timetable"),
            "wormery compost": ("notes.md", None, "Garden › Compost"),
            "zither strings": ("guide.rst", None, "Guide › Tuning"),
            "Brötchen Bäcker knusprig": ("legacy.txt", None, None),
            "aardvark snuffle": ("data.csv", None, None),
            "wombat_mode enabled": ("config.json", None, None),
            "frobnicate_widgets count": ("tool.py", None, "def frobnicate_widgets"),
        }
        for query, (name, page, section) in expected.items():
            hit = index.search(query, limit=1)[0]
            assert (hit.path.rsplit("/", 1)[-1], hit.page, hit.section) == (name, page, section), query
