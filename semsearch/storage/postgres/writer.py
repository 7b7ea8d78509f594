"""Writing to a PostgreSQL index, with other indexers perhaps writing at the same time.

Commits take turns (COMMIT_LOCK), so they never deadlock and each sees the last one's rows.
A text's vector is paid for once across indexers: before embedding a text an indexer claims
its hash (an advisory lock); a text another indexer has claimed is reported as stored, and
documents that need it are written at once all the same, their chunks waiting in the
backlog for the vector the other indexer commits. A claim vanishes with its session, so an
indexer killed mid-run holds nothing up: the texts it was embedding stay in the backlog,
and the next run (anyone's) embeds them.
"""

from __future__ import annotations

import logging
import time
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
# Texts past this many are left in the backlog (their documents are written all the same)
# and claimed from there as this writer's claims are given up, at the end of its run.
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
        # Hashes whose row waits for its vector.
        self._waiting: set[bytes] = set()
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

    def _learn(self, hashes: Iterable[bytes], *, again: bool = False) -> None:
        """Look up the rows of hashes not known to be stored (a waiting row may have been
        filled, or dropped with its last chunk, by any writer); `again`: all of them."""
        wanted = [digest for digest in hashes if again or digest not in self._vector_ids or digest in self._waiting]
        found = self.store.vector_rows(wanted)
        for digest in wanted:
            if digest in found:
                self._vector_ids[digest], waiting = found[digest]
                (self._waiting.add if waiting else self._waiting.discard)(digest)
            else:
                self._vector_ids.pop(digest, None)
                self._waiting.discard(digest)

    def stored_vectors(self, hashes: Iterable[bytes]) -> set[bytes]:
        hashes = set(hashes)
        wanted = [
            digest for digest in hashes
            if (digest not in self._vector_ids or digest in self._waiting) and digest not in self._elsewhere and digest not in self._claimed
        ]
        later: set[bytes] = set()
        if wanted:
            self._learn(wanted)
            claimable = [digest for digest in wanted if digest not in self._vector_ids or digest in self._waiting]
            mine = set(self._claim(claimable))
            # Past MAX_CLAIMS: not this writer's to embed now; the backlog keeps them.
            later = {digest for digest in claimable if digest not in mine and digest not in self._elsewhere}
        stored = {digest for digest in hashes if (digest in self._vector_ids and digest not in self._waiting) or digest in self._elsewhere}
        return stored | later

    def _claim(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Claim texts to embed; returns those this writer got (the others are being embedded elsewhere)."""
        unclaimed = sorted(hashes)[: max(MAX_CLAIMS - len(self._claimed), 0)]
        if not unclaimed:
            return []
        taken = self.store.rows(
            "SELECT h, pg_try_advisory_lock(('x' || encode(substr(h, 1, 8), 'hex'))::bit(64)::bigint)"
            " FROM unnest(%s::bytea[]) AS h",
            [unclaimed],
        )
        mine = [bytes(digest) for digest, ok in taken if ok]
        self._elsewhere.update(bytes(digest) for digest, ok in taken if not ok)
        # Committed between the look-up and the claim: no need to embed it after all.
        self._learn(mine)
        arrived = [digest for digest in mine if digest in self._vector_ids and digest not in self._waiting]
        self._release(arrived)
        arrived_set = set(arrived)
        self._claimed.update(digest for digest in mine if digest not in arrived_set)
        return [digest for digest in mine if digest not in arrived_set]

    def waiting_texts(self, limit: int, exclude: set[bytes]) -> list[tuple[bytes, str]]:
        found: list[tuple[bytes, str]] = []
        offset = 0
        while len(found) < limit:
            page = self.store.waiting_texts(2 * limit, offset)
            candidates = {digest: text for digest, text in page if digest not in exclude and digest not in self._elsewhere}
            mine = set(self._claim(list(candidates)))
            found += [(digest, text) for digest, text in page if digest in mine][: limit - len(found)]
            if len(page) < 2 * limit or len(self._claimed) >= MAX_CLAIMS:
                break
            offset += len(page)
        return found

    def waiting_count(self) -> int:
        return int(self.store.scalar("SELECT count(*) FROM backlog"))

    def reject(self, hashes: Iterable[bytes]) -> list[str]:
        documents = self.store.documents_waiting_for(list(hashes))
        if not documents:
            return []
        with self.transaction():
            self.store.delete_documents([document_id for document_id, _, _ in documents])
        return [self.places.path(path, kind) for _, path, kind in documents]

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
                self._waiting.difference_update(hashes)
            if change.documents:
                removed, added = self._write([self._stored_as(write) for write in change.documents])
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
        """Write documents; their texts without a vector row wait for one. Call inside `transaction()`."""
        # Each text's hash, worked out once: (document, [(hash, text), ...]).
        texts = [(write, [pair for chunk in write.chunks for pair in chunk.embedded()]) for write in writes]
        self._learn(digest for _, pairs in texts for digest, _ in pairs)
        waiting: dict[bytes, tuple[str, int]] = {}
        for write, pairs in texts:
            # The newest documents' texts are embedded first; records have no file time.
            priority = write.record.mtime_ns or time.time_ns()
            for digest, text in pairs:
                if (digest not in self._vector_ids or digest in self._waiting) and (digest not in waiting or waiting[digest][1] < priority):
                    waiting[digest] = (text, priority)
        if waiting:
            self.store.add_waiting([(digest, text, priority) for digest, (text, priority) in waiting.items()])
            self._learn(waiting, again=True)
        parts = [part.hash for write in writes for chunk in write.chunks for part in chunk.parts]
        return self.store.replace_documents(
            [(write.record, write.chunks, [self._vector_ids[digest] for digest in write.hashes]) for write in writes],
            {digest: self._vector_ids[digest] for digest in parts if digest in self._vector_ids},
        )

    def finish(self) -> None:
        """At the end of a run: give up the claims of texts left unembedded."""
        self.release_claims()

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
