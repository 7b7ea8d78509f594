"""Search filters: which documents a search may return, decided before ranking.

Filters become the set of chunk ids both retrievers are restricted to, so the cut to
`limit` happens after filtering and a filter never hides a match that exists.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SemsearchError

if TYPE_CHECKING:
    import numpy as np

    from .store import Store

DateLike = str | dt.date | dt.datetime | float | int


@dataclass(frozen=True)
class Filters:
    """Path globs (any may match), extensions (any may match), and a modification-time window."""

    paths: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    after_ns: int | None = None
    before_ns: int | None = None

    @classmethod
    def build(
        cls,
        path: str | Sequence[str] | None = None,
        ext: str | Sequence[str] | None = None,
        after: DateLike | None = None,
        before: DateLike | None = None,
    ) -> Filters:
        """From user input: `ext` may be "md,pdf" or [".md", "pdf"]; dates "2024-05-01" or datetimes."""
        paths = (path,) if isinstance(path, str) else tuple(path or ())
        raw = [ext] if isinstance(ext, str) else list(ext or ())
        extensions = tuple(
            "." + part.strip().lower().lstrip(".") for item in raw for part in item.split(",") if part.strip()
        )
        return cls(paths, extensions, _epoch_ns(after, "after"), _epoch_ns(before, "before"))

    @property
    def active(self) -> bool:
        return bool(self.paths or self.extensions or self.after_ns is not None or self.before_ns is not None)

    def admits(self, path: str, kind: str, mtime_ns: int | None, roots: Iterable[str]) -> bool:
        """Whether a document passes every filter."""
        if self.extensions and os.path.splitext(path)[1].lower() not in self.extensions:
            return False
        if self.after_ns is not None and (mtime_ns is None or mtime_ns < self.after_ns):
            return False
        if self.before_ns is not None and (mtime_ns is None or mtime_ns >= self.before_ns):
            return False
        return not self.paths or any(_glob_matches(pattern, path, kind, roots) for pattern in self.paths)


def allowed_chunks(store: Store, filters: Filters) -> np.ndarray:
    """The ids of the chunks of every document the filters admit."""
    roots = store.roots()
    documents = [
        document_id
        for document_id, path, kind, mtime_ns in store.document_facts()
        if filters.admits(path, kind, mtime_ns, roots)
    ]
    return store.chunk_ids_of_documents(documents)


def _glob_matches(pattern: str, path: str, kind: str, roots: Iterable[str]) -> bool:
    """A pattern without a slash matches the file name (as in .gitignore); one with a slash
    matches the path, absolute or relative to the working folder or to an indexed folder."""
    pattern = os.path.expanduser(pattern)
    if "/" not in pattern.rstrip("/"):
        return fnmatch.fnmatchcase(os.path.basename(path), pattern) or fnmatch.fnmatchcase(path, pattern)
    pattern = pattern.rstrip("/")
    candidates = [path]
    if kind == "file":
        candidates.append(os.path.relpath(path))
        candidates += [os.path.relpath(path, root) for root in roots if path.startswith(root.rstrip("/") + "/")]
    # A folder pattern ("notes/2024") takes everything under it.
    return any(fnmatch.fnmatchcase(c, pattern) or fnmatch.fnmatchcase(c, pattern + "/*") for c in candidates)


def _epoch_ns(value: DateLike | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise SemsearchError(f"--{name} {value!r} is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM).") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return int(value.timestamp() * 1e9)  # naive datetimes are local time, like file times

