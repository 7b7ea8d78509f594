"""HTML: the visible text only, with headings as sections and source lines kept.

Left out: what a reader never sees (scripts, styles, hidden elements) and what repeats on
every page of a site (navigation, headers, footers, sidebars, cookie banners). When a
page marks its main content (`<main>`, `role="main"`, as Sphinx, MkDocs and most site
generators do), only that is kept; the page title is kept in any case.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from .base import Document, Section, decode
from .datauri import without_data_payloads

EXTENSIONS = {".html", ".htm", ".xhtml"}

# Content a reader never sees, or site chrome repeated on every page.
_HIDDEN = {
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "nav", "footer", "head",
    "button", "select", "dialog",
}
_HIDDEN_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar", "toolbar"}
# Class or id words that mark chrome in common site generators and themes (Sphinx's
# "related" and "sphinxsidebar", "headerlink" ¶ anchors, breadcrumbs, cookie notices).
_CHROME = re.compile(
    r"^(?:sphinxsidebar|related|headerlink|breadcrumbs?|navbar|nav|navigation|menu|sidebar|site-header|"
    r"site-footer|footer|masthead|skip-link|skip-to-content|cookie.*|consent.*|share|social|advert.*|ads|"
    r"toc-sidebar|pager|pagination|edit-this-page|back-to-top)$",
    re.IGNORECASE,
)
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "aside", "li", "ul", "ol", "dl", "dt", "dd",
    "tr", "table", "thead", "tbody", "blockquote", "pre", "figure", "figcaption", "hr", "br",
    "h1", "h2", "h3", "h4", "h5", "h6", "form", "fieldset", "details", "summary", "caption",
}
_CELLS = {"td", "th"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
_SPACES = re.compile(r"\s+")
# Runs of white space other than newlines, except single spaces, which need no change
# (and are most of them: matching those too doubles the time on a large page).
_SPACES_BUT_NEWLINES = re.compile(r" [^\S\n]+|[^\S\n ][^\S\n]*")
_MAIN = re.compile(r"<main[\s>]|role\s*=\s*[\"']?main\b", re.IGNORECASE)
_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)


def _hides(tag: str, attributes: dict[str, str | None]) -> bool:
    if tag in _HIDDEN:
        return True
    if "hidden" in attributes or (attributes.get("aria-hidden") or "").lower() == "true":
        return True
    if (attributes.get("role") or "").lower() in _HIDDEN_ROLES:
        return True
    style = (attributes.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        return True
    words = (attributes.get("class") or "").split() + (attributes.get("id") or "").split()
    return any(_CHROME.match(word) for word in words)


def _is_main(tag: str, attributes: dict[str, str | None]) -> bool:
    return tag == "main" or (attributes.get("role") or "").lower() == "main"


class _Extractor(HTMLParser):
    def __init__(self, main_only: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.anchors: list[tuple[int, int]] = []
        self.sections: list[Section] = []
        self.title_parts: list[str] = []
        # Open elements: (tag, hides its content, is the main content).
        self.stack: list[tuple[str, bool, bool]] = []
        self.hidden_depth = 0
        self.main_depth = 0
        self.main_only = main_only
        self.in_title = False
        self.pre_depth = 0
        self.heading: tuple[int, int, list[str]] | None = None  # level, start, text

    @property
    def silent(self) -> bool:
        return bool(self.hidden_depth) or (self.main_only and not self.main_depth)

    def _emit(self, text: str, line: int) -> None:
        if not text:
            return
        self._anchor(self.length, line)
        self.parts.append(text)
        self.length += len(text)

    def _anchor(self, offset: int, line: int) -> None:
        # Only where the line changes: the text in between is on the line of the anchor before it.
        if not self.anchors or self.anchors[-1][1] != line:
            self.anchors.append((offset, line))

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

    def _space(self) -> None:
        # Table cells side by side: keep their words apart.
        if self.length and not self.parts[-1].endswith((" ", "\n")):
            self.parts.append(" ")
            self.length += 1

    def handle_starttag(self, tag: str, attrs) -> None:
        attributes = dict(attrs)
        if tag == "title" and not self.stack_has("svg"):
            self.in_title = True
        hides = tag != "head" and _hides(tag, attributes)
        main = _is_main(tag, attributes)
        if tag not in _VOID:
            self.stack.append((tag, hides, main))
            self.hidden_depth += hides
            self.main_depth += main
        if self.silent:
            return
        if tag in _BLOCKS:
            self._break()
        elif tag in _CELLS:
            self._space()
        if tag == "pre":
            self.pre_depth += 1
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.heading = (int(tag[1]), self.length, [])

    def stack_has(self, tag: str) -> bool:
        return any(open_tag == tag for open_tag, _, _ in self.stack)

    def handle_startendtag(self, tag: str, attrs) -> None:
        if not self.silent and tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if not self.stack_has(tag):
            return
        was_silent = self.silent
        # Close whatever was left open inside this element, as browsers do.
        while self.stack:
            open_tag, hides, main = self.stack.pop()
            self.hidden_depth -= hides
            self.main_depth -= main
            if open_tag == "pre" and not was_silent:
                self.pre_depth = max(self.pre_depth - 1, 0)
            if open_tag == tag:
                break
        if was_silent:
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
        if self.silent or (self.stack_has("head") and not self.stack_has("body")):
            return
        data = without_data_payloads(data)
        line = self.getpos()[0]  # where this text starts in the source
        if self.pre_depth:
            # Kept as written: each of its lines is anchored to its own source line.
            if self.heading:
                self.heading[2].append(data)
            start = self.length
            self._emit(data, line)
            for match in re.finditer("\n", data):
                line += 1
                self._anchor(start + match.end(), line)
            return
        # Runs of white space collapse to one space, but a newline among them still moves
        # the words after it to the next source line.
        pieces: list[str] = []
        length = self.length
        spaced = length == 0 or "".join(self.parts[-1:]).endswith(("\n", " "))
        for number, piece in enumerate(_SPACES_BUT_NEWLINES.sub(" ", data).split("\n")):
            if number:
                line += 1
                if not spaced:
                    pieces.append(" ")
                    length += 1
                    spaced = True
            if spaced:
                piece = piece.lstrip(" ")
            if piece:
                self._anchor(length, line)
                pieces.append(piece)
                length += len(piece)
                spaced = piece.endswith(" ")
        text = "".join(pieces)
        if self.heading:
            self.heading[2].append(text)
        if text:
            self.parts.append(text)
            self.length = length


def read_html(data: bytes, path: Path) -> Document:
    declared = _CHARSET.search(data[:4096])
    source = decode(data, declared.group(1).decode("ascii", "replace") if declared else None)
    parser = _Extractor(main_only=_MAIN.search(source) is not None)
    parser.feed(source)
    parser.close()
    text = "".join(parser.parts).rstrip()
    sections = parser.sections
    if parser.main_only and not text.strip():
        # The "main" element was empty (a client-side app): fall back to the whole page.
        parser = _Extractor(main_only=False)
        parser.feed(source)
        parser.close()
        text, sections = "".join(parser.parts).rstrip(), parser.sections
    title = _SPACES.sub(" ", "".join(parser.title_parts)).strip() or None
    if title is None and sections:
        title = sections[0].title
    return Document(text, format="html", title=title, sections=sections, line_anchors=parser.anchors or None)
