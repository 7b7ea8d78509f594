"""What every reader returns: the text to index and the structure found in it."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .encoding import decode

__all__ = ["Document", "Section", "decode"]

_LINE_END = re.compile(r"\r\n?|\n")


@dataclass(frozen=True)
class Section:
    """A heading: where it starts in the text, its level (1 = top) and its title."""

    start: int
    level: int
    title: str


@dataclass
class Document:
    """Text extracted from one file, with offsets that chunks refer to.

    `line_anchors` maps offsets in `text` to lines of the source file, for formats whose
    extracted text is not the file itself (HTML): each (offset, line) says that the text
    from `offset` on is on `line` until the next anchor. Without it, line numbers count the
    line ends of `text` (LF, CRLF, or a lone CR as in classic Mac OS files, as editors do).
    `pages` holds the offset where each page starts (PDF).
    """

    text: str
    format: str = "text"
    title: str | None = None
    sections: list[Section] = field(default_factory=list)
    pages: list[int] | None = None
    line_anchors: list[tuple[int, int]] | None = None
    code: bool = False
    _newlines: list[int] | None = field(default=None, repr=False, compare=False)

    def line_at(self, offset: int) -> int:
        """The 1-based source line of the character at `offset`."""
        if self.line_anchors:
            i = bisect.bisect_right(self.line_anchors, (offset, float("inf"))) - 1
            return self.line_anchors[max(i, 0)][1]
        if self._newlines is None:
            # The last character of each line end, so a CRLF counts once and its two
            # characters stay on the line they end, as a lone LF does.
            self._newlines = [m.end() - 1 for m in _LINE_END.finditer(self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1

    def page_at(self, offset: int) -> int | None:
        """The 1-based page of the character at `offset`, for paged formats."""
        if not self.pages:
            return None
        return bisect.bisect_right(self.pages, offset)

    def section_at(self, offset: int) -> str | None:
        """The heading path around `offset`, e.g. "Installation › Linux"."""
        path: list[Section] = []
        for section in self.sections:
            if section.start > offset:
                break
            while path and path[-1].level >= section.level:
                path.pop()
            path.append(section)
        return " › ".join(s.title for s in path) if path else None

