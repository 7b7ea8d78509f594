"""HTML: the visible text only, with headings as sections and source lines kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from .base import Document, Section, decode

EXTENSIONS = {".html", ".htm", ".xhtml"}

# Content a reader never sees, or site chrome repeated on every page.
_HIDDEN = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "nav", "footer", "head"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "aside", "li", "ul", "ol", "dl", "dt", "dd",
    "tr", "table", "thead", "tbody", "blockquote", "pre", "figure", "figcaption", "hr", "br",
    "h1", "h2", "h3", "h4", "h5", "h6", "form", "fieldset", "details", "summary", "caption",
}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
_SPACES = re.compile(r"\s+")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.anchors: list[tuple[int, int]] = []
        self.sections: list[Section] = []
        self.title_parts: list[str] = []
        self.hidden_depth = 0
        self.stack: list[str] = []
        self.in_title = False
        self.pre_depth = 0
        self.heading: tuple[int, int, list[str]] | None = None  # level, start, text

    def _emit(self, text: str) -> None:
        if not text:
            return
        self.anchors.append((self.length, self.getpos()[0]))
        self.parts.append(text)
        self.length += len(text)

    def _break(self) -> None:
        # Blank line between blocks so the chunker sees paragraphs.
        if self.length == 0:
            return
        tail = "".join(self.parts[-2:])
        if tail.endswith("\n\n"):
            return
        newline = "\n" if tail.endswith("\n") else "\n\n"
        self.parts.append(newline)
        self.length += len(newline)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _HIDDEN and tag != "head":
            self.hidden_depth += 1
        if tag not in _VOID:
            self.stack.append(tag)
        if self.hidden_depth:
            return
        if tag in _BLOCKS:
            self._break()
        if tag == "pre":
            self.pre_depth += 1
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.heading = (int(tag[1]), self.length, [])

    def handle_startendtag(self, tag: str, attrs) -> None:
        if not self.hidden_depth and tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag not in self.stack:
            return
        # Close whatever was left open inside this element, as browsers do.
        while self.stack:
            open_tag = self.stack.pop()
            if open_tag in _HIDDEN and open_tag != "head":
                self.hidden_depth -= 1
            if open_tag == "pre" and not self.hidden_depth:
                self.pre_depth = max(self.pre_depth - 1, 0)
            if open_tag == tag:
                break
        if self.hidden_depth:
            return
        if self.heading and tag == f"h{self.heading[0]}":
            level, start, words = self.heading
            title = _SPACES.sub(" ", "".join(words)).strip()
            if title:
                self.sections.append(Section(start, level, title))
            self.heading = None
        if tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.hidden_depth or "head" in self.stack and "body" not in self.stack:
            return
        if not self.pre_depth:
            data = _SPACES.sub(" ", data)
            if self.length == 0 or "".join(self.parts[-1:]).endswith(("\n", " ")):
                data = data.lstrip()
        if self.heading:
            self.heading[2].append(data)
        self._emit(data)


def read_html(data: bytes, path: Path) -> Document:
    parser = _Extractor()
    parser.feed(decode(data))
    parser.close()
    text = "".join(parser.parts).rstrip()
    title = _SPACES.sub(" ", "".join(parser.title_parts)).strip() or None
    if title is None and parser.sections:
        title = parser.sections[0].title
    return Document(text, format="html", title=title, sections=parser.sections, line_anchors=parser.anchors or None)
