"""Writing to a PostgreSQL index, with other indexers perhaps writing at the same time.

Commits take turns (COMMIT_LOCK), so they never deadlock and each sees the last one's rows.
A text's vector is paid for once across indexers: before embedding a text an indexer claims
its hash (an advisory lock); a text another indexer has claimed is reported as stored, and
the documents that need its vector wait, unwritten, until it is committed. They are written
with a later commit, or when the run ends: then this indexer holds no claim of its own, so
waiting for the others' cannot deadlock. A claim vanishes with its session, so an indexer
killed mid-run holds nothing up; what it had not committed is read again by the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from ...errors import IndexLockedError
from ...settings import check_dimensions
from ..base import Commit, Committed, DocumentWrite, Writer

if TYPE_CHECKING:
    from ...readers.walk import Skipped
    from .places import Places
    from .store import PostgresStore

log = logging.getLogger(__name__)


# Claims one writer holds at most: each is an entry in the server's lock table, which is
# shared by every session and sized by max_locks_per_transaction (64) x max_connections.
# Texts past this many are embedded unclaimed (another indexer may then embed them too).
MAX_CLAIMS = 1000


def _claim_key(digest: bytes) -> int:
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresWriter(Writer):
    """The writer of one `PostgresBackend.writer()` block (RUN_LOCK held shared)."""

    def __init__(self, store: PostgresStore, location: str, places: Places) -> None:
        self.store = store
        self.places = places
        self.location = location
        self._vector_ids: dict[bytes, int] = {}
        # Hashes this writer claimed and has not yet committed a vector for.
        self._claimed: set[bytes] = set()
        # Hashes another indexer was embedding when this one needed them.
        self._elsewhere: set[bytes] = set()
        # Documents waiting for vectors from elsewhere, by path (the latest version wins).
        self._deferred: dict[str, DocumentWrite] = {}
        self.deferred_left: list[str] = []
        self._indexed = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.store.transaction():
            yield

    def set_settings(self, values: dict[str, str]) -> None:
        with self.transaction():
            self.store.set_meta(values)

    def clear(self) -> None:
        # Emptying the index under other indexers would pull their vectors from under them.
        if not self.store.lock_run_alone(0):
            raise IndexLockedError(
                f"Another indexer is writing to the index {self.location}; a rebuild has to run alone.",
                hint="Try again when the other indexing runs have finished.", index=self.location,
            )
        try:
            with self.transaction():
                self.store.clear()
        finally:
            self.store.unlock_run_alone()
        self._vector_ids.clear()

    def add_roots(self, roots: Iterable[str]) -> None:
        with self.transaction():
            self.store.add_roots(self.places.learn(list(roots)))

    def remove_roots(self, paths: Sequence[str]) -> None:
        with self.transaction():
            self.store.remove_roots([self.places.key(path) for path in paths])

    def set_root_patterns(self, root: str, include: Sequence[str], exclude: Sequence[str]) -> None:
        with self.transaction():
            self.store.set_root_patterns(self.places.key(root), include, exclude)

    def set_root_size_limit(self, root: str, limit: int | None) -> None:
        with self.transaction():
            self.store.set_root_size_limit(self.places.key(root), limit)

    def replace_skipped(self, roots: Sequence[str], skipped: Iterable[Skipped], reader: int) -> None:
        with self.transaction():
            self.store.replace_skipped(
                [self.places.key(root) for root in roots], [replace(item, path=self.places.key(item.path)) for item in skipped], reader
            )

    # -- vectors and claims -----------------------------------------------------------------

    def stored_vectors(self, hashes: Iterable[bytes]) -> set[bytes]:
        hashes = set(hashes)
        wanted = [digest for digest in hashes if digest not in self._vector_ids and digest not in self._elsewhere and digest not in self._claimed]
        if wanted:
            self._vector_ids.update(self.store.vector_ids(wanted))
            unclaimed = sorted(digest for digest in wanted if digest not in self._vector_ids)
            unclaimed = unclaimed[: max(MAX_CLAIMS - len(self._claimed), 0)]
            if unclaimed:
                taken = self.store.rows(
                    "SELECT h, pg_try_advisory_lock(('x' || encode(substr(h, 1, 8), 'hex'))::bit(64)::bigint)"
                    " FROM unnest(%s::bytea[]) AS h",
                    [unclaimed],
                )
                mine = [bytes(digest) for digest, ok in taken if ok]
                self._elsewhere.update(bytes(digest) for digest, ok in taken if not ok)
                # Committed between the look-up and the claim: no need to embed it after all.
                arrived = self.store.vector_ids(mine)
                self._vector_ids.update(arrived)
                self._release(list(arrived))
                self._claimed.update(digest for digest in mine if digest not in arrived)
        return {digest for digest in hashes if digest in self._vector_ids or digest in self._elsewhere}

    def _release(self, hashes: Sequence[bytes]) -> None:
        if hashes and not self.store.conn.closed:
            self.store.rows(
                "SELECT pg_advisory_unlock(('x' || encode(substr(h, 1, 8), 'hex'))::bit(64)::bigint) FROM unnest(%s::bytea[]) AS h",
                [list(hashes)],
            )
        self._claimed.difference_update(hashes)

    def release_claims(self) -> None:
        """Give up the claims of texts this writer will not embed after all."""
        self._release(sorted(self._claimed))

    # -- documents --------------------------------------------------------------------------

    def commit(self, change: Commit) -> Committed:
        import numpy as np

        removed: list[int] = []
        added: list[int] = []
        with self.transaction():
            if change.vectors:
                self._check_dimensions(len(change.vectors[0][1]))
                hashes = [digest for digest, _ in change.vectors]
                ids = self.store.add_vectors(hashes, np.stack([vector for _, vector in change.vectors]), replace=change.replace_vectors)
                self._vector_ids.update(zip(hashes, ids))
            writes = list(self._deferred.values()) + [self._stored_as(write) for write in change.documents]
            self._deferred = {}
            if writes:
                removed, added = self._write(writes)
            if change.touches:
                self.store.touch_documents(change.touches)
        self._release([digest for digest, _ in change.vectors if digest in self._claimed])
        return Committed(chunks_added=len(added), chunks_removed=len(removed))

    def _stored_as(self, write: DocumentWrite) -> DocumentWrite:
        """The document with its path as stored: its folder's name and its path inside."""
        if write.record.kind != "file":
            return write
        return DocumentWrite(replace(write.record, path=self.places.key(write.record.path)), write.chunks, write.hashes)

    def _write(self, writes: list[DocumentWrite]) -> tuple[list[int], list[int]]:
        """Write the documents whose vectors are all stored; defer those waiting for another
        indexer's. Call inside `transaction()`."""
        parts = [part.hash for write in writes for chunk in write.chunks for part in chunk.parts]
        wanted = {digest for write in writes for digest in write.hashes} | set(parts)
        unknown = [digest for digest in wanted if digest not in self._vector_ids]
        if unknown:
            self._vector_ids.update(self.store.vector_ids(unknown))
        ready = []
        for write in writes:
            if all(digest in self._vector_ids for digest in write.hashes):
                ready.append(write)
            else:
                self._deferred[write.record.path] = write
        return self.store.replace_documents(
            [(write.record, write.chunks, [self._vector_ids[digest] for digest in write.hashes]) for write in ready],
            {digest: self._vector_ids[digest] for digest in parts if digest in self._vector_ids},
        )

    def finish(self) -> None:
        """At the end of a run: wait for the vectors other indexers were embedding for this
        run's documents, and write them. A document whose vector never came (its indexer
        died) is left for the next run, which reads its file again."""
        self.release_claims()
        if not self._deferred:
            return
        waiting = {digest for write in self._deferred.values() for digest in write.hashes if digest not in self._vector_ids}
        for digest in sorted(waiting):
            # Blocks while the indexer embedding it holds its claim; returns when it commits or dies.
            self.store.rows("SELECT pg_advisory_lock(%s), pg_advisory_unlock(%s)", [_claim_key(digest), _claim_key(digest)])
        with self.transaction():
            self._write(list(self._deferred.values()))
        self.deferred_left = sorted(self._deferred)
        if self.deferred_left:
            log.warning("semsearch: %d documents wait for vectors another indexer did not finish; the next run indexes them", len(self.deferred_left))
        self._deferred = {}

    def remove_documents(self, document_ids: Sequence[int]) -> int:
        if not document_ids:
            return 0
        with self.transaction():
            return len(self.store.delete_documents(list(document_ids)))

    def _check_dimensions(self, dimensions: int) -> None:
        known = self.store.dimensions()
        if known is None:
            self.store.set_meta({"dimensions": str(dimensions)})
        else:
            check_dimensions(self.location, known, dimensions)
        if not self._indexed:
            # The size may have been set before any vector (a new index's settings).
            self.store.ensure_vector_index(dimensions)
            self._indexed = True
