"""Search filters: which documents a search may return, decided before ranking.

Filters become the set of chunk ids both retrievers are restricted to, so the cut to
`limit` happens after filtering and a filter never hides a match that exists.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import SemsearchError

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
        """Whether a document passes every filter (for many documents, see `admitter`)."""
        return self.admitter(roots)(path, kind, mtime_ns)

    def admitter(self, roots: Iterable[str]) -> Callable[[str, str, int | None], bool]:
        """`admits` with the patterns compiled and the folders looked up once, as it is asked
        of every document in the index on every filtered search."""
        matchers = [_PathPattern(pattern, roots) for pattern in self.paths]

        def admits(path: str, kind: str, mtime_ns: int | None) -> bool:
            if self.extensions and os.path.splitext(path)[1].lower() not in self.extensions:
                return False
            if self.after_ns is not None and (mtime_ns is None or mtime_ns < self.after_ns):
                return False
            if self.before_ns is not None and (mtime_ns is None or mtime_ns >= self.before_ns):
                return False
            return not matchers or any(matcher.matches(path, kind) for matcher in matchers)

        return admits


class _PathPattern:
    """As in .gitignore, a pattern without a slash ("*.md", "drafts") matches the file's name
    or the name of a folder it is in, below an indexed folder, and one that only ends in a
    slash ("drafts/") a folder's name; one with a slash matches the path, absolute or
    relative to the working folder or to an indexed folder, and a folder pattern
    ("notes/2024") takes everything under it."""

    def __init__(self, pattern: str, roots: Iterable[str]) -> None:
        pattern = os.path.expanduser(pattern)
        while pattern.startswith("./"):
            pattern = pattern[2:]
        self.by_name = "/" not in pattern.rstrip("/")
        self.folder_name = self.by_name and pattern.endswith("/")
        pattern = pattern.rstrip("/")
        self._match = re.compile(fnmatch.translate(pattern)).match
        self._under = re.compile(fnmatch.translate(pattern + "/*")).match
        self._cwd = os.getcwd()
        self._cwd_prefix = self._cwd.rstrip("/") + "/"
        # A path outside the working folder is relative to it only as "../…", which a
        # pattern can match only if it starts with a dot (one starting with * matches the
        # same tail of the absolute path).
        self._outside_cwd = pattern.startswith(".")
        self._roots = [root.rstrip("/") + "/" for root in roots]
        # Whether a folder (by its path) has a matching name in it, below an indexed folder:
        # asked once per folder, not once per document in it.
        self._folders: dict[str, bool] = {}

    def matches(self, path: str, kind: str) -> bool:
        if self.by_name:
            folder, _, name = path.rpartition("/")
            if not self.folder_name and (self._match(name) or self._match(path)):
                return True
            found = self._folders.get(folder)
            if found is None:
                inside = next((folder[len(root) :] for root in self._roots if (folder + "/").startswith(root)), folder)
                found = self._folders[folder] = any(self._match(name) for name in inside.split("/") if name)
            return found
        candidates = [path]
        if kind == "file":
            # Stored paths are absolute and normalised: under a folder, relative is a slice.
            if path.startswith(self._cwd_prefix):
                candidates.append(path[len(self._cwd_prefix) :])
            elif self._outside_cwd:
                candidates.append(os.path.relpath(path, self._cwd))
            candidates += [path[len(root) :] for root in self._roots if path.startswith(root)]
        return any(self._match(c) or self._under(c) for c in candidates)


def _epoch_ns(value: DateLike | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return _clamped(value * 1e9)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise SemsearchError(
                f"{name}={value!r} is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM).", code="bad_date", name=name, value=value
            ) from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    try:
        seconds = value.timestamp()  # naive datetimes are local time, like file times
    except (ValueError, OverflowError, OSError):
        # The platform's local time does not reach so far (year 1, year 9999): such a bound
        # is before or after every file, and the hours of a time zone change nothing.
        seconds = value.replace(tzinfo=value.tzinfo or dt.timezone.utc).timestamp()
    return _clamped(seconds * 1e9)


def _clamped(nanoseconds: float) -> int:
    """Nanoseconds within what a 64-bit integer (and so a database) holds: 1677 to 2262,
    wider than any file's modification time."""
    if nanoseconds != nanoseconds:  # nan
        raise SemsearchError("A date bound is not a number.", code="bad_date", name="date", value="nan")
    return int(max(min(nanoseconds, 2**63 - 1), -(2**63)))

