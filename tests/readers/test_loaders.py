"""Readers: the text and structure each format yields, and the reasons for refusing a file."""

from __future__ import annotations

import pytest

from semsearch.errors import DocumentError
from semsearch.readers import read_document


def _read(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_document(path)


def test_markdown_headings_front_matter_and_fences(tmp_path):
    document = _read(
        tmp_path,
        "note.md",
        "---\ntitle: Field notes\n---\n# Setup\n\ntext\n\n```bash\n# not a heading\n```\n\nUsage\n-----\n\nmore\n",
    )
    assert document.title == "Field notes"
    assert [(s.level, s.title) for s in document.sections] == [(1, "Setup"), (2, "Usage")]
    assert document.section_at(document.text.index("more")) == "Setup › Usage"


def test_markdown_title_falls_back_to_first_heading(tmp_path):
    assert _read(tmp_path, "a.md", "intro\n\n# The Title\n\nbody\n").title == "The Title"


def test_rst_titles_by_adornment_order(tmp_path):
    document = _read(
        tmp_path,
        "guide.rst",
        "=====\nGuide\n=====\n\nIntro.\n\nInstall\n-------\n\nSteps.\n\nLinux\n~~~~~\n\nApt.\n\nUse\n---\n\nRun.\n",
    )
    assert [(s.level, s.title) for s in document.sections] == [(1, "Guide"), (2, "Install"), (3, "Linux"), (2, "Use")]
    assert document.section_at(document.text.index("Apt.")) == "Guide › Install › Linux"
    assert document.section_at(document.text.index("Run.")) == "Guide › Use"


def test_html_visible_text_title_sections_and_source_lines(tmp_path):
    html = (
        "<!doctype html>\n<html>\n<head><title>Release &amp; notes</title>\n<style>body { color: red }</style></head>\n"
        "<body>\n<nav><a href='/'>Home</a></nav>\n<h1>Version 2</h1>\n<p>Faster   sync\nfor everyone.</p>\n"
        "<script>track()</script>\n<h2>Fixes</h2>\n<ul><li>Crash on start</li><li>Slow search</li></ul>\n"
        "<footer>Copyright</footer>\n</body>\n</html>\n"
    )
    document = _read(tmp_path, "notes.html", html)
    assert document.title == "Release & notes"
    for hidden in ("color", "Home", "track", "Copyright"):
        assert hidden not in document.text
    assert "Faster sync for everyone." in document.text
    assert "Crash on start\n\nSlow search" in document.text
    assert [s.title for s in document.sections] == ["Version 2", "Fixes"]
    assert document.line_at(document.text.index("Faster")) == 8
    assert document.line_at(document.text.index("Slow search")) == 12


def test_text_encodings(tmp_path):
    assert _read(tmp_path, "bom.txt", b"\xef\xbb\xbfGr\xc3\xbc\xc3\x9fe").text == "Grüße"
    assert _read(tmp_path, "latin1.txt", b"caf\xe9 cr\xe8me \xff").text == "café crème ÿ"
    assert _read(tmp_path, "utf16.txt", "Grüße aus Köln".encode("utf-16")).text == "Grüße aus Köln"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x00\x01\x02\x03binary", "binary file"),
        (b"\xc3\x28\xa0\xa1", "unknown text encoding"),
        (b"   \n\n", "no text"),
    ],
)
def test_refused_files_say_why(tmp_path, content, reason):
    with pytest.raises(DocumentError, match=reason):
        _read(tmp_path, "bad.txt", content)


def test_unsupported_type(tmp_path):
    with pytest.raises(DocumentError, match="unsupported file type"):
        _read(tmp_path, "photo.jpg", b"\xff\xd8")


def test_code_files_by_extension_and_name(tmp_path):
    assert _read(tmp_path, "tool.py", "def main():\n    pass\n").code
    assert _read(tmp_path, "Makefile", "all:\n\techo hi\n").code
