"""What every reader returns: the text to index and the structure found in it."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..errors import DocumentError


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
    extracted text is not the file itself (HTML); without it, line numbers count the
    newlines of `text`. `pages` holds the offset where each page starts (PDF).
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
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
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


def decode(data: bytes) -> str:
    """Decode file bytes as text: UTF-8 (with or without BOM) or UTF-16 with a BOM.

    Raises DocumentError for binary data or text in an encoding it cannot tell.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DocumentError("not valid UTF-16 text") from None
    if b"\x00" in data[:8192]:
        raise DocumentError("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError("not UTF-8 text (unknown encoding)") from None
