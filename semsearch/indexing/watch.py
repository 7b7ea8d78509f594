"""Keeping an index current: file events, collected and debounced, applied as updates.

An update is an ordinary indexing run over the folders the events fall in (`Index.add`),
so every guarantee of a run holds: only changed chunks are embedded, a moved file keeps its
vectors (they are stored by text hash), ignore rules are read afresh, a killed process
leaves a consistent index that the next start-up pass completes. Events tell *when* and
*where* to look; the run decides *what* changed, so no event sequence (atomic saves,
renames, a deleted folder, a `git checkout` of thousands of files) can leave the index
wrong, only a run early or late.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import EmbeddingError, IndexLockedError, SemsearchError, StorageError
from ..readers.walk import IGNORE_FILES, SKIP_DIRECTORIES, temporary

if TYPE_CHECKING:
    from ..results import IndexStats


class Updatable(Protocol):
    """What the watcher needs of an `Index` (which imports this module to offer `watch`)."""

    path: Path | str

    def add(self, paths: list[str], *, backlog_seconds: float | None = None) -> IndexStats: ...

    def embed_backlog(self, *, seconds: float | None = None) -> IndexStats: ...

    def folders(self) -> list[str]: ...

log = logging.getLogger("semsearch")

# Events closer together than this form one update (a save is several events; a checkout
# thousands); watchfiles waits this long for quiet before handing them over.
DEBOUNCE = 0.3
# A file modified more recently than this may still be being written: wait for it.
SETTLE = 0.3
# ... but not for ever (a log file written to all day is indexed as it stands).
SETTLE_LIMIT = 30.0
# How often a missing folder is looked for, and the longest wait between failed updates.
CHECK_EVERY = 1.0
# An update embeds texts waiting in the backlog for at most this long, so that file events
# never wait long behind it; the watcher goes on with the backlog while nothing happens.
BACKLOG_SLICE = 5.0
RETRY_LIMIT = 60.0


@dataclass
class Update:
    """One applied update: the folders looked at, what the events named, what changed."""

    roots: list[str]
    paths: int
    stats: IndexStats
    seconds: float

    @property
    def changed_anything(self) -> bool:
        stats = self.stats
        return bool(stats.new or stats.changed or stats.removed or stats.chunks_embedded)

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "event": "update", "roots": self.roots, "paths": self.paths, "seconds": round(self.seconds, 3),
            "new": stats.new, "changed": stats.changed, "removed": stats.removed,
            "chunks_embedded": stats.chunks_embedded, "chunks_reused": stats.chunks_reused,
            "skipped": stats.skipped_by_reason,
        }


@dataclass
class Notice:
    """Something the watcher wants said that is not an update: a folder gone or back, an
    update that failed and will be tried again."""

    kind: str  # "missing", "back", "retry", "watching"
    message: str
    roots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "message": self.message, "roots": self.roots}


class Watcher:
    """Watches an index's folders (or some of them) and applies what changes.

    `on_update` hears of each update that changed something, `on_notice` of the rest.
    `run` returns when `stop` is set. The index is written only during an update, so other
    processes may search and index it in between.
    """

    def __init__(
        self,
        index: Updatable,
        roots: Iterable[str | os.PathLike] | None = None,
        *,
        poll: bool = False,
        debounce: float = DEBOUNCE,
        settle: float = SETTLE,
        on_update: Callable[[Update], None] | None = None,
        on_notice: Callable[[Notice], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.index = index
        self.poll = poll
        self.debounce = debounce
        self.settle = settle
        self.on_update = on_update or (lambda update: None)
        self.on_notice = on_notice or (lambda notice: None)
        self.stop = stop or threading.Event()
        self._failures = 0
        self._skipped_said: set[tuple[str, str]] = set()
        self._backlog = False  # texts were left waiting by the last update
        if roots is None:
            known = index.folders()
            if not known:
                raise SemsearchError("The index has no folders yet: name the folders to watch.", code="no_folders")
            self.roots = known
        else:
            from ..readers.walk import resolve_roots

            self.roots = [str(root) for root in resolve_roots([Path(root) for root in roots])]
        # A local index may live inside a watched folder: its own writes are not news.
        self._index_dir = str(index.path) if isinstance(index.path, Path) else None

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """The start-up pass (what changed while nothing watched), then updates as events
        arrive, until `stop` is set."""
        present = self._present()
        missing = [root for root in self.roots if root not in present]
        if missing:
            self.on_notice(Notice("missing", _missing_message(missing), missing))
        while not self.stop.is_set():
            if not present:
                if self.stop.wait(CHECK_EVERY):
                    return
                present = self._changed_roots(present)
                continue
            present = self._watch(present)

    def _watch(self, present: list[str]) -> list[str]:
        """Watch `present` until the folders present change (returned) or `stop` is set.

        One watcher for the whole time, so that events arriving during an update are
        collected for the next. Its first answer (events, or a second of quiet) comes once
        it listens: only then does the catch-up pass run, so nothing changed between the
        last update and the start of listening goes unseen."""
        import watchfiles

        pending: set[str] = set(present)
        named: set[str] = set()
        caught_up = False
        try:
            for changes in watchfiles.watch(
                *present, watch_filter=self._wanted, debounce=int(self.debounce * 1000), step=50,
                stop_event=self.stop, rust_timeout=int(CHECK_EVERY * 1000), yield_on_timeout=True,
                force_polling=self.poll or None, poll_delay_ms=300, ignore_permission_denied=True,
            ):
                for _, path in changes:
                    root = self._root_of(path)
                    if root is not None:
                        pending.add(root)
                        named.add(path)
                now = self._changed_roots(present)
                if now != present:
                    return now
                if not changes and not pending and self._backlog:
                    self._embed_backlog(present)  # quiet: go on with the backlog
                if pending:
                    self._wait_for_writers(named)
                    if self._apply(pending, len(named)):
                        pending, named = set(), set()
                if not caught_up and not pending:
                    caught_up = True
                    self.on_notice(Notice("watching", f"Watching {', '.join(present)}.", list(present)))
        except (OSError, RuntimeError) as exc:
            # A watched folder removed under the watcher, say: look again at what is there.
            log.debug("semsearch: watching stopped (%s); looking at the folders again", exc)
            self.stop.wait(CHECK_EVERY)
            return self._changed_roots(present)
        return present

    def _apply(self, pending: set[str], named: int) -> bool:
        """One update of the folders in `pending` that still exist; False when it must wait
        (the index busy, the service down) and be tried again."""
        roots = [root for root in sorted(pending) if os.path.isdir(root)]
        if not roots:
            return True
        started = time.monotonic()
        try:
            stats = self.index.add(roots, backlog_seconds=BACKLOG_SLICE)
        except (IndexLockedError, EmbeddingError, StorageError) as exc:
            self._wait_after(exc, roots)
            return False
        self._failures = 0
        self._backlog = stats.waiting > 0
        update = Update(roots, named, stats, time.monotonic() - started)
        # Files that cannot be read are said once, not at every update of their folder.
        skipped = {(item.path, item.reason) for item in stats.skipped}
        if update.changed_anything or skipped - self._skipped_said:
            self.on_update(update)
        self._skipped_said = skipped
        return True

    def _embed_backlog(self, present: list[str]) -> None:
        """A slice of the backlog, reported as an update when it embedded anything."""
        started = time.monotonic()
        try:
            stats = self.index.embed_backlog(seconds=BACKLOG_SLICE)
        except (IndexLockedError, EmbeddingError, StorageError) as exc:
            self._wait_after(exc, present)
            return
        self._failures = 0
        self._backlog = stats.waiting > 0
        if stats.chunks_embedded:
            self.on_update(Update(list(present), 0, stats, time.monotonic() - started))

    def _wait_after(self, error: Exception, roots: list[str]) -> None:
        """Say that an update failed (the index busy, the service down), and wait longer each time."""
        self._failures += 1
        wait = min(CHECK_EVERY * 2 ** (self._failures - 1), RETRY_LIMIT)
        self.on_notice(Notice("retry", f"{error} Trying again in {wait:.0f} s.", roots))
        self.stop.wait(wait)

    # -- what the events mean ---------------------------------------------------------------

    def _wanted(self, change: Any, path: str) -> bool:
        """Whether an event may change the index: not the index's own files, not an editor's
        temporary file, nothing in a hidden or dependency folder (an ignore file counts)."""
        if self._index_dir is not None and (path == self._index_dir or path.startswith(self._index_dir + os.sep)):
            return False
        name = os.path.basename(path)
        if temporary(name):
            return False
        root = self._root_of(path)
        if root is None:
            return False
        parts = Path(os.path.relpath(path, root)).parts
        for part in parts[:-1]:
            if part.startswith(".") or part in SKIP_DIRECTORIES:
                return False
        return not (name.startswith(".") and name not in IGNORE_FILES)

    def _root_of(self, path: str) -> str | None:
        best = None
        for root in self.roots:
            if (path == root or path.startswith(root.rstrip(os.sep) + os.sep)) and (best is None or len(root) > len(best)):
                best = root
        return best

    def _present(self) -> list[str]:
        return [root for root in self.roots if os.path.isdir(root)]

    def _changed_roots(self, present: list[str]) -> list[str]:
        """The folders present now; a folder gone is reported (its documents are kept), a
        folder back is reported (the watcher started for it catches up)."""
        now = self._present()
        gone = [root for root in present if root not in now]
        back = [root for root in now if root not in present]
        if gone:
            self.on_notice(Notice("missing", _missing_message(gone), gone))
        if back:
            self.on_notice(Notice("back", f"Back: {', '.join(back)}.", back))
        return now

    def _wait_for_writers(self, paths: set[str]) -> None:
        """Wait until no named file was modified within the last `settle` seconds (a file
        still being written is indexed once it is whole), at most SETTLE_LIMIT."""
        deadline = time.monotonic() + SETTLE_LIMIT
        while not self.stop.is_set() and time.monotonic() < deadline:
            youngest = 0.0
            for path in paths:
                try:
                    youngest = max(youngest, os.stat(path).st_mtime)
                except OSError:
                    continue  # gone again: the update will see that
            age = time.time() - youngest
            if age >= self.settle:
                return
            self.stop.wait(min(self.settle - age + 0.01, 0.5))


def _missing_message(roots: list[str]) -> str:
    return f"Not there: {', '.join(roots)}. Its documents are kept; it is watched again when it comes back."
