"""The local backend: an index in a folder, a SQLite database and a FAISS cache beside it.

The database (`sqlite/`) is the source of truth; the FAISS file (`faiss/`) is a cache of its
vectors that is checked against it on use and rebuilt from it when stale or missing. One
writer at a time holds `write.lock`; readers never wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import StorageError
from ...settings import VectorSettings
from ..base import Backend, DocumentState, SkippedState, StorageStatus, refuse_copy_with_backlog
from ..faiss.cache import FILES as CACHE_FILES
from ..faiss.cache import VectorCache
from ..per_thread import PerThread
from ..sqlite.database import DATABASE_NAME
from ..sqlite.locking import LOCK_NAME, write_lock
from ..sqlite.store import Store

if TYPE_CHECKING:
    import numpy as np

    from ...results import CheckReport
    from .writer import LocalWriter

log = logging.getLogger(__name__)

# What an index folder holds (its temporary files are hidden): the database and its WAL
# files, the write lock, the FAISS cache and its note.
FILES = (DATABASE_NAME, LOCK_NAME, *CACHE_FILES)


def exists(directory: Path) -> bool:
    """Whether `directory` holds a local index."""
    return (directory / DATABASE_NAME).exists()


class LocalBackend(Backend):
    """An index folder, opened (and brought to the current schema)."""

    kind = "local"
    concurrent_reads = True  # a connection per thread (per_thread.py)

    def __init__(self, directory: Path, *, made_folder: bool = False) -> None:
        self.directory = directory
        self._made_folder = made_folder
        self.location = str(directory)
        # Each thread its own connection: searches run side by side (see per_thread.py).
        self.store: Store = PerThread(str(directory), lambda: Store(directory))  # type: ignore[assignment]
        self.readonly = self.store.readonly
        stored = self.store.meta()
        settings = VectorSettings.from_dict(json.loads(stored["vectors"])) if stored.get("vectors") else VectorSettings()
        self.cache = VectorCache(directory, self.store, settings, self.store.dimensions)
        self._backlog: tuple[int, tuple[int, int]] = (-1, (0, 0))  # (generation, counts)

    def dimensions(self) -> int | None:
        return self.store.dimensions()

    def settings(self) -> dict[str, str]:
        return self.store.meta()

    def close(self) -> None:
        self.store.close()  # every thread's connection

    def discard(self) -> None:
        self.close()
        for name in FILES:
            for path in self.directory.glob(f"{name}*"):
                path.unlink(missing_ok=True)
        if self._made_folder:
            with suppress(OSError):  # not empty after all: someone put something there
                self.directory.rmdir()

    def walk_exclusions(self) -> tuple[Path | None, tuple[str, ...]]:
        return self.directory.resolve(), FILES

    # -- catalogue --------------------------------------------------------------------------

    def roots(self) -> list[str]:
        return self.store.roots()

    def root_patterns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        return self.store.root_patterns()

    def root_size_limits(self) -> dict[str, int | None]:
        return self.store.root_size_limits()

    def document_states(self, roots: Sequence[str]) -> dict[str, DocumentState]:
        return self.store.document_states(roots)

    def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]:
        return self.store.document_states_at(paths)

    def documents_matching(self, paths: Sequence[str]) -> list[DocumentState]:
        return self.store.documents_matching(paths)

    def skipped_states(self, roots: Sequence[str]) -> dict[str, SkippedState]:
        return self.store.skipped_states(roots)

    def record_count(self) -> int:
        return self.store.record_count()

    def has_documents(self) -> bool:
        return self.store.has_documents()

    # -- retrieval --------------------------------------------------------------------------

    def has_chunks(self) -> bool:
        return self.store.has_chunks()

    def prepare_dense(self) -> None:
        # In a fresh process this loads (maps) the FAISS file and adds what was committed
        # since it was saved, in memory: a search never writes.
        self.cache.sync()

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[list[int], list[float]]:
        ids, scores = self.cache.search(vector, k, allowed)
        return ids.tolist(), scores.tolist()

    def keyword(self, terms: Sequence[str], k: int, allowed: np.ndarray | None) -> tuple[list[tuple[int, float]], float]:
        return self.store.keyword_search(terms, k, allowed)

    def backlog(self) -> tuple[int, int]:
        # Asked by every search; counted again only after a commit (the generation moves).
        generation = self.store.generation()
        if self._backlog[0] != generation:
            self._backlog = (generation, self.store.backlog_counts())
        return self._backlog[1]

    def waiting_among(self, chunk_ids: Sequence[int]) -> set[int]:
        return self.store.waiting_among(chunk_ids)

    def document_facts(self) -> Iterator[tuple[int, str, str, int | None]]:
        return self.store.document_facts()

    def chunk_ids_of_documents(self, document_ids: Sequence[int]) -> np.ndarray:
        return self.store.chunk_ids_of_documents(document_ids)

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return self.store.chunk_rows(chunk_ids)

    def chunk_parts(self, chunk_ids: Sequence[int]) -> dict[int, list[tuple[int, int, str | None, np.ndarray]]]:
        dimensions = self.dimensions()
        return self.store.chunk_parts(chunk_ids, dimensions) if dimensions else {}

    def export_documents(self) -> Iterator[tuple[Any, list, list[bytes], dict[bytes, np.ndarray]]]:
        refuse_copy_with_backlog(self)
        dimensions = self.dimensions()
        if dimensions:
            yield from self.store.export_documents(dimensions)

    # -- maintenance ------------------------------------------------------------------------

    def status(self) -> StorageStatus:
        counts = self.store.counts()
        waiting_chunks, waiting_texts = self.store.backlog_counts()
        note = self.cache.note()
        return StorageStatus(
            documents=counts["documents"],
            chunks=counts["chunks"],
            vectors=counts["vectors"],
            roots=self.store.roots(),
            disk_bytes=sum(f.stat().st_size for f in self.directory.iterdir() if f.is_file()),
            skipped=self.store.skipped_files(),
            index_type=note.layout.describe() if note else "none",
            index_vectors=note.count if note else 0,
            index_layout=dict(note.layout.__dict__) if note else {},
            index_memory_bytes=note.memory_bytes if note else 0,
            index_disk_bytes=self.cache.disk_bytes() if note else 0,
            waiting_chunks=waiting_chunks,
            waiting_texts=waiting_texts,
        )

    def check(self, *, repair: bool = False, timeout: float = 10.0) -> CheckReport:
        from .check import inspect, mend

        report, damage = inspect(self.store, self.cache, self.location)
        if repair and damage is not None:
            with self.writer(timeout) as writer:
                mend(self.store, self.cache, writer, report, damage)
        return report

    # -- writing ----------------------------------------------------------------------------

    @contextmanager
    def writer(
        self, timeout: float, *, everything: bool = False, step: Callable[[str], None] | None = None
    ) -> Iterator[LocalWriter]:
        from .writer import LocalWriter

        if self.readonly:
            raise StorageError(
                f"Cannot write in the index folder {self.directory}: it is read-only (searching it works).",
                hint="Check its permissions, or copy the index somewhere writable.",
                code="read_only", index=self.location,
            )
        with write_lock(self.directory, timeout):
            start = self.store.generation()
            writer = LocalWriter(self.store, self.cache, self.location)
            try:
                yield writer
            except BaseException:
                # Keep what was committed findable, but never hide the original error.
                with suppress(Exception):
                    self.cache.save_if_behind()
                raise
            try:
                self._tidy(start, everything, step or (lambda _: None))
            except StorageError as exc:
                # The change is committed; failing to tidy up after it (a full disk) loses
                # nothing, and the next run does it.
                log.warning("semsearch: the change is saved, but tidying up after it failed: %s", exc)

    def _tidy(self, start: int, everything: bool, step: Callable[[str], None]) -> None:
        """After a write: drop vectors no chunk uses, fit the cache's layout to the new size,
        recount common words when due, and save the cache if the file is behind; `step`
        hears of each step that may take a while."""
        store = self.store
        changed = store.generation() != start
        if changed or everything:
            with store.transaction():
                store.delete_unused_vectors(None if everything else store.released_vectors)
            store.released_vectors.clear()
        if changed:
            self.cache.relayout(step)
        # Also when nothing changed: an index upgraded through migration m005 has no
        # counts of its common words until a run records them (seconds at a million
        # chunks), and without them every search counts its words itself.
        if store.term_statistics_due():
            step("counting the keyword index's common words")
            store.refresh_term_statistics(force=True)
        # The catch-up of searches (which never save) is saved here, as is a cache left
        # behind by a killed run, or deleted: the next search loads it instead of reading
        # the vectors from the database again.
        note = self.cache.note()
        if self.dimensions() is not None and store.has_chunks() and (note is None or note.generation != store.generation()):
            step("bringing the vector cache up to date")
            self.cache.sync()
        if self.cache.behind():
            step("saving the vector cache")
        self.cache.save_if_behind()
