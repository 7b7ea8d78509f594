"""Change detection: which files under the folders need reading, and which documents are gone.

A file whose size and modification time match what the index remembers, read by the current
reader version, is unchanged without being read. One refused by this reader before and
unchanged since is refused again without reading. Everything else is read; documents under
the folders that the walk did not find are candidates for removal (see Pipeline.remove_gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..readers.walk import FileEntry, Ignored, Skipped, walk
from ..storage.base import Catalogue, DocumentState

# Bump when readers or chunking change what they produce from the same file: documents
# read by an older version are read again (their unchanged chunks keep their vectors).
# 2: encoding detection, PDF, DOCX, code definitions as sections, HTML main content only.
# 3: minified code skipped. 4: a PDF page starts a new chunk.
# 5: HTML lines inside long text and <pre>, lone CR line ends, data: URI payloads left out,
#    CRLF front matter, DOCX content controls and tracked insertions, AES PDFs, Latin codepages,
#    every PDF page (a slide too) starts a chunk.
# 6: chunks end sentences at the danda, the Arabic question mark and the Urdu full stop;
#    ASCII text with a few stray bytes is read as UTF-8 with the damage marked.
READER_VERSION = 6


def current(state: DocumentState | None) -> bool:
    """Whether a document was read by this version of the readers."""
    return state is not None and state.reader == READER_VERSION


@dataclass
class Plan:
    """What a walk of some folders found, compared with what the index holds."""

    todo: list[tuple[FileEntry, DocumentState | None]] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    # Paths of indexed documents the walk found (or could not look at this time).
    found: set[str] = field(default_factory=set)
    # Indexed documents under the folders that the walk did not find: path -> document id.
    missing: dict[str, int] = field(default_factory=dict)


def plan(
    catalogue: Catalogue,
    roots: list[Path],
    *,
    max_file_size: int | None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    force: bool = False,
    exclusions: tuple[Path | None, tuple[str, ...]] = (None, ()),
) -> Plan:
    """Walk `roots` (see `walk.walk` for the options) and sort what it finds."""
    paths = [str(root) for root in roots]
    known = catalogue.document_states(paths)
    refused = catalogue.skipped_states(paths)
    index_dir, index_files = exclusions
    result = Plan()
    for entry in walk(roots, max_file_size=max_file_size, include=include, exclude=exclude, index_dir=index_dir, index_files=index_files):
        if isinstance(entry, Ignored):
            result.ignored.append(entry)
            continue
        if isinstance(entry, Skipped):
            result.skipped.append(entry)
            if entry.reason.startswith("unreadable"):
                # Not readable this time is not gone: what was indexed under it stays.
                under = entry.path.rstrip("/") + "/"
                result.found.update(path for path in known if path == entry.path or path.startswith(under))
            continue
        path = str(entry.path)
        result.found.add(path)
        state = known.pop(path, None)
        if state is not None and current(state) and not force and (state.size, state.mtime_ns) == (entry.size, entry.mtime_ns):
            result.unchanged += 1
            continue
        seen = refused.get(path)
        if (
            seen is not None and state is None and not force
            and (seen.size, seen.mtime_ns, seen.reader) == (entry.size, entry.mtime_ns, READER_VERSION)
        ):
            # Refused by this reader before and unchanged since: refused again without reading.
            result.skipped.append(Skipped(path, seen.reason, entry.size, entry.mtime_ns))
            continue
        result.todo.append((entry, state))
    result.missing = {path: state.id for path, state in known.items()}
    # The most recently modified first: their texts are embedded first, so what a person is
    # working on is complete soonest (the backlog keeps this order; see storage backlog).
    result.todo.sort(key=lambda pair: pair[0].mtime_ns or 0, reverse=True)
    return result
