"""What a hit points at: a chunk in the lines around it, and a document's lines by range.

Only documents in the index are served. A path is looked up in the index's catalogue
before the filesystem is touched, as given or joined to an indexed folder without
resolving anything (`docs/../x` is the path `x`), and a file is read only when its real
location lies inside an indexed folder: `../`, an absolute path elsewhere, a symlink put
in a document's place and a name that only decodes to one of these all get the same
NotInIndexError as a name the index never held.

Lines are numbered as a hit's `start_line` and `end_line` count them: the file's lines
for formats whose hits point at source lines (text, Markdown, code, HTML), the lines of
the extracted text for PDF and Word files. A record from `add_texts` has no file: its
lines come from its chunks.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..errors import DocumentError, NotInIndexError, SemsearchError
from ..results import DocumentLines, Line, Passage
from ..text.checks import undecodable

if TYPE_CHECKING:
    from ..storage.base import Backend, DocumentState

# The most lines one call returns, and the most context lines a passage takes on each side.
MAX_LINES = 2_000
MAX_CONTEXT = 200
_LINE_END = re.compile(r"\r\n?|\n")
# Documents read recently, by path, size and modification time: a page that opens one hit
# after another in the same file reads it once.
_KEPT = 8
_kept: OrderedDict[tuple[str, int, int], list[str]] = OrderedDict()
_kept_lock = threading.Lock()


def find_document(backend: Backend, given: object) -> DocumentState:
    """The indexed document `given` names: its path as stored (as search results give it),
    a record's id, or a path relative to an indexed folder. NotInIndexError otherwise."""
    if not isinstance(given, str) or not given or "\x00" in given or undecodable(given):
        raise _not_found(given)
    candidates = [given]
    if os.path.isabs(given):
        candidates.append(os.path.normpath(given))
    else:
        candidates += [os.path.normpath(os.path.join(root, given)) for root in backend.roots()]
    states = backend.document_states_at(candidates)
    for candidate in candidates:
        if candidate in states:
            return states[candidate]
    raise _not_found(given)


def document_lines(backend: Backend, given: object, start: int = 1, end: int | None = None) -> DocumentLines:
    """Lines `start` to `end` (1-based, inclusive; None: to the end, at most MAX_LINES) of
    the indexed document `given` names (see `find_document`)."""
    if not isinstance(start, int) or start < 1 or (end is not None and (not isinstance(end, int) or end < start)):
        raise SemsearchError(
            f"Lines run from 1 and the end may not come before the start (start {start}, end {end}).",
            code="invalid_range", start=start, end=end,
        )
    state = find_document(backend, given)
    lines, notes, facts = _lines_of(backend, state)
    last = min(len(lines), end if end is not None else start + MAX_LINES - 1, start + MAX_LINES - 1)
    if end is not None and end > start + MAX_LINES - 1:
        notes.append(f"At most {MAX_LINES:,} lines are given at once: ask for the rest from line {last + 1}.")
    shown = [Line(number, lines[number - 1]) for number in range(start, last + 1)]
    return DocumentLines(
        path=state.path, start_line=start, end_line=max(last, start - 1), total_lines=len(lines), lines=shown,
        title=facts.get("title"), format=facts.get("format"), notes=notes,
    )


def passage(backend: Backend, chunk_id: object, context: int = 3) -> Passage:
    """The chunk `chunk_id` with `context` lines on each side, its own lines marked."""
    if isinstance(chunk_id, bool) or not isinstance(chunk_id, int) or not 0 <= chunk_id < 2**63:
        raise NotInIndexError(f"No chunk {chunk_id!r} in the index.", code="chunk_not_found", chunk_id=chunk_id)
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context <= MAX_CONTEXT:
        raise SemsearchError(f"context must be 0 to {MAX_CONTEXT} lines, not {context!r}.", code="invalid_context")
    row = backend.chunk_rows([chunk_id]).get(chunk_id)
    if row is None:
        raise NotInIndexError(
            f"No chunk {chunk_id} in the index.", hint="Search again: the index may have changed since.",
            code="chunk_not_found", chunk_id=chunk_id,
        )
    states = backend.document_states_at([row["path"]])
    state = states.get(row["path"])
    notes: list[str] = []
    lines: list[str] = []
    if state is not None:
        try:
            lines, notes, _ = _lines_of(backend, state)
        except NotInIndexError:
            lines = []
    first_line, last_line = int(row["start_line"]), int(row["end_line"])
    total: int | None = len(lines)
    shown_from = max(1, first_line - context)
    if len(lines) < last_line:
        # The file is gone, or shorter than when it was indexed: the chunk's own text.
        own = _LINE_END.split(row["text"])
        lines = [""] * (first_line - 1) + own
        last_line, shown_from, total = first_line + len(own) - 1, first_line, None
        notes = ["The file cannot be read as it was indexed: the passage is shown as indexed, without the lines around it."]
    shown_to = min(len(lines), last_line + context) if total is not None else last_line
    return Passage(
        chunk_id=chunk_id, path=row["path"], start_line=first_line, end_line=int(row["end_line"]), text=row["text"],
        lines=[Line(n, lines[n - 1], first_line <= n <= last_line) for n in range(shown_from, shown_to + 1)],
        title=row.get("title"), section=row.get("section"), page=row.get("page"), format=row.get("format"),
        total_lines=total, notes=notes,
    )


def _not_found(given: object) -> NotInIndexError:
    return NotInIndexError(
        f"No document {given!r} in the index.", hint="Give a path as search results name it.",
        code="document_not_found", path=given,
    )


def _lines_of(backend: Backend, state: DocumentState) -> tuple[list[str], list[str], dict]:
    """The document's lines, notes on them, and its stored title and format."""
    facts = _facts(backend, state)
    if state.size is None:  # a record: its text is its chunks
        return _record_lines(backend, state), [], facts
    path = _inside_roots(backend, state)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise _unreadable(state) from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _not_found(state.path)
        key = (state.path, info.st_size, info.st_mtime_ns)
        with _kept_lock:
            lines = _kept.get(key)
            if lines is not None:
                _kept.move_to_end(key)
        if lines is None:
            lines = _read_lines(state.path, file.read())
            with _kept_lock:
                _kept[key] = lines
                while len(_kept) > _KEPT:
                    _kept.popitem(last=False)
    notes = []
    if info.st_size != state.size or info.st_mtime_ns != state.mtime_ns:
        notes.append("The file changed since it was indexed: lines may have moved.")
    return lines, notes, facts


def _inside_roots(backend: Backend, state: DocumentState) -> str:
    """The real path of an indexed file, when it lies inside an indexed folder."""
    real = os.path.realpath(state.path)
    for root in backend.roots():
        folder = os.path.realpath(root)
        if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
            return real
    raise _not_found(state.path)


def _read_lines(path: str, data: bytes) -> list[str]:
    from pathlib import Path

    from ..readers import read_document
    from ..readers.base import decode

    try:
        document = read_document(Path(path), data)
        # HTML hits point at the file's lines; other formats' at the lines of their text.
        text = decode(data) if document.line_anchors else document.text
    except DocumentError:
        raise NotInIndexError(f"The document {path!r} can no longer be read.", code="document_unreadable", path=path) from None
    return _LINE_END.split(text)


def _record_lines(backend: Backend, state: DocumentState) -> list[str]:
    lines: dict[int, str] = {}
    ids = backend.chunk_ids_of_documents([state.id])
    for row in sorted(backend.chunk_rows(ids.tolist()).values(), key=lambda row: row["start_char"]):
        for number, text in enumerate(_LINE_END.split(row["text"]), start=int(row["start_line"])):
            if len(text) > len(lines.get(number, "")):
                lines[number] = text
    return [lines.get(number, "") for number in range(1, max(lines, default=0) + 1)]


def _facts(backend: Backend, state: DocumentState) -> dict:
    ids = backend.chunk_ids_of_documents([state.id])
    if not len(ids):
        return {}
    row = backend.chunk_rows([int(ids[0])]).get(int(ids[0]), {})
    return {"title": row.get("title"), "format": row.get("format")}


def _unreadable(state: DocumentState) -> NotInIndexError:
    return NotInIndexError(
        f"The document {state.path!r} is in the index but cannot be read now.",
        hint="Index its folder again if it moved or was deleted.", code="document_unreadable", path=state.path,
    )
