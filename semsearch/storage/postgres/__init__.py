"""The PostgreSQL backend: an index in a PostgreSQL database with the pgvector extension,
which many machines can index into and search at once.

The database is the whole index (no cache beside it): documents, chunks with their keyword
entries (tsvector, GIN), and vectors by text hash with an HNSW index. Indexing runs share
the index (each holds RUN_LOCK shared) and take turns to commit; searches read committed
state only. See database.py for the locks and writer.py for how indexers share work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...errors import IndexLockedError, StorageError
from ..base import Backend, DocumentState, SkippedState, StorageStatus, refuse_copy_with_backlog
from ..per_thread import PerThread
from .connection import is_url, shown
from .places import Places
from .store import PostgresStore

if TYPE_CHECKING:
    import numpy as np

    from ...results import CheckReport
    from .writer import PostgresWriter

__all__ = ["PostgresBackend", "is_url", "shown"]

log = logging.getLogger(__name__)


class PostgresBackend(Backend):
    """An index database, opened (and brought to the current schema)."""

    kind = "postgres"
    concurrent_reads = True  # a connection per thread (per_thread.py)
    # A hybrid search's two retrievals are statements the server runs: side by side, on two
    # connections, the search waits for the slower one only (benchmarks/README.md).
    parallel_retrieval = True

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.location = shown(url)
        # Each thread its own connection, so searches in several threads run side by side; what
        # must stay on one connection (a writer's transactions and advisory locks, a repair's
        # lock) takes the calling thread's store once (`current()`).
        self._stores: PerThread[PostgresStore] = PerThread(self.location, lambda: PostgresStore(url, create=create))
        self.store: PostgresStore = self._stores  # type: ignore[assignment]
        self.readonly = self.store.readonly
        self.places = Places(self.store)

    def dimensions(self) -> int | None:
        return self.store.dimensions()

    def settings(self) -> dict[str, str]:
        return self.store.meta()

    def close(self) -> None:
        self._stores.close()  # every thread's connection

    # -- catalogue --------------------------------------------------------------------------

    def roots(self) -> list[str]:
        return sorted(self.places.path(key) for key in self.store.roots())

    def root_patterns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        return {self.places.path(key): value for key, value in self.store.root_patterns().items()}

    def root_size_limits(self) -> dict[str, int | None]:
        return {self.places.path(key): value for key, value in self.store.root_size_limits().items()}

    def _shown_states(self, states: Iterable[DocumentState]) -> dict[str, DocumentState]:
        shown_states = (replace(state, path=self.places.path(state.path)) for state in states)
        return {state.path: state for state in shown_states}

    def document_states(self, roots: Sequence[str]) -> dict[str, DocumentState]:
        return self._shown_states(self.store.document_states([self.places.key(root) for root in roots]).values())

    def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]:
        given = {self.places.key(path): path for path in paths}
        found = self.store.document_states_at(given)
        return {given[key]: replace(state, path=given[key]) for key, state in found.items()}

    def documents_matching(self, paths: Sequence[str]) -> list[DocumentState]:
        found = self.store.documents_matching([self.places.key(path) for path in paths])
        return [replace(state, path=self.places.path(state.path)) for state in found]

    def skipped_states(self, roots: Sequence[str]) -> dict[str, SkippedState]:
        found = self.store.skipped_states([self.places.key(root) for root in roots])
        return {self.places.path(key): state for key, state in found.items()}

    def record_count(self) -> int:
        return self.store.record_count()

    def has_documents(self) -> bool:
        return self.store.has_documents()

    # -- retrieval --------------------------------------------------------------------------

    def has_chunks(self) -> bool:
        return self.store.has_chunks()

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[list[int], list[float]]:
        return self.store.dense(vector, k, allowed)

    def backlog(self) -> tuple[int, int]:
        return self.store.backlog_counts()

    def waiting_among(self, chunk_ids: Sequence[int]) -> set[int]:
        return self.store.waiting_among(chunk_ids)

    def keyword(self, terms: Sequence[str], k: int, allowed: np.ndarray | None) -> tuple[list[tuple[int, float]], float]:
        return self.store.keyword_search(terms, k, allowed)

    def document_facts(self) -> Iterator[tuple[int, str, str, int | None]]:
        for document_id, key, kind, mtime_ns in self.store.document_facts():
            yield document_id, self.places.path(key, kind), kind, mtime_ns

    def chunk_ids_of_documents(self, document_ids: Sequence[int]) -> np.ndarray:
        return self.store.chunk_ids_of_documents(document_ids)

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        rows = self.store.chunk_rows(chunk_ids)
        for row in rows.values():
            row["path"] = self.places.path(row["path"], row["kind"])
        return rows

    def chunk_parts(self, chunk_ids: Sequence[int]) -> dict[int, list[tuple[int, int, str | None, np.ndarray]]]:
        dimensions = self.dimensions()
        return self.store.chunk_parts(chunk_ids, dimensions) if dimensions else {}

    def export_documents(self) -> Iterator[tuple[Any, list, list[bytes], dict[bytes, np.ndarray]]]:
        refuse_copy_with_backlog(self)
        dimensions = self.dimensions()
        if not dimensions:
            return
        for record, chunks, hashes, vectors in self.store.export_documents(dimensions):
            record.path = self.places.path(record.path, record.kind)
            yield record, chunks, hashes, vectors

    def shared_rate_limit(self, key: str, rate: float, capacity: float) -> Any:
        from .ratelimit import DatabaseBucket

        return DatabaseBucket(self.url, key, rate, capacity)

    # -- maintenance ------------------------------------------------------------------------

    def status(self) -> StorageStatus:
        store = self._stores.current()
        counts = store.counts()
        waiting_chunks, waiting_texts = store.backlog_counts()
        disk = store.scalar(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_table_is_visible(c.oid)",
            [["meta", "roots", "documents", "vectors", "chunks", "chunk_parts", "skipped_files", "keyword_totals", "backlog"]],
        )
        index_bytes = store.scalar("SELECT coalesce(pg_relation_size(to_regclass('vectors_hnsw')), 0)") if store.has_vector_index() else 0
        return StorageStatus(
            documents=counts["documents"],
            chunks=counts["chunks"],
            vectors=counts["vectors"],
            roots=self.roots(),
            disk_bytes=int(disk),
            skipped=[(self.places.path(key), reason) for key, reason in store.skipped_files()],
            index_type="hnsw (halfvec, cosine)" if index_bytes or store.has_vector_index() else "none",
            index_vectors=counts["vectors"] if store.has_vector_index() else 0,
            index_layout={"kind": "hnsw", "precision": "halfvec"} if store.has_vector_index() else {},
            index_memory_bytes=int(index_bytes),
            index_disk_bytes=int(index_bytes),
            waiting_chunks=waiting_chunks,
            waiting_texts=waiting_texts,
        )

    def check(self, *, repair: bool = False, timeout: float = 10.0) -> CheckReport:
        from .check import inspect, mend

        store = self._stores.current()
        report, damage = inspect(store, self.location)
        if repair and damage is not None:
            if self.readonly:
                raise self._read_only()
            if not store.lock_run_alone(timeout):
                raise IndexLockedError(
                    f"The index {self.location} is being written to; a repair has to run alone.",
                    hint="Try again when the indexing runs have finished.", index=self.location,
                )
            try:
                mend(store, report, damage)
            finally:
                store.unlock_run_alone()
        return report

    # -- writing ----------------------------------------------------------------------------

    def _read_only(self) -> StorageError:
        return StorageError(
            f"The database role may only read the index {self.location} (searching it works).",
            hint="Index with a role granted writing (see the README).", code="read_only", index=self.location,
        )

    @contextmanager
    def writer(
        self, timeout: float, *, everything: bool = False, step: Callable[[str], None] | None = None
    ) -> Iterator[PostgresWriter]:
        from .writer import PostgresWriter

        if self.readonly:
            raise self._read_only()
        store = self._stores.current()
        if not store.lock_run(timeout):
            raise IndexLockedError(
                f"The index {self.location} is being rebuilt or repaired.", hint="Try again when that has finished.",
                index=self.location,
            )
        self.places.forget()
        writer = PostgresWriter(store, self.location, self.places)
        start = store.scalar("SELECT chunks FROM keyword_totals")
        try:
            store.defer_vector_index()
            try:
                yield writer
                writer.finish()
                if store.index_deferred:
                    (step or (lambda _: None))("building the vector index")
                    store.build_deferred_index()
            finally:
                writer.release_claims()
                # After a failure the index stays unbuilt (searches are exact) until the
                # next run builds it, or `check --repair` does.
                store.index_deferred = False
            self._tidy(store, start, everything, step or (lambda _: None))
        finally:
            store.unlock_run()

    def _tidy(self, store: PostgresStore, start: int, everything: bool, step: Callable[[str], None]) -> None:
        """After a run: drop the vectors no chunk uses (those its changes released, or all of
        them after a run over every folder), but only when no other indexer is at work, as
        theirs may be waiting for their documents; and refresh the planner's statistics after
        a large change, so searches keep using the vector index."""
        if (everything or store.released_vectors) and store.lock_run_alone(0):
            try:
                step("dropping vectors no chunk uses")
                with store.transaction():
                    store.delete_unused_vectors(None if everything else store.released_vectors)
                store.released_vectors.clear()
            finally:
                store.unlock_run_alone()
        chunks = store.scalar("SELECT chunks FROM keyword_totals")
        if abs(chunks - start) > max(start // 10, 100):
            step("updating the database's statistics")
            try:
                store.execute("ANALYZE vectors, chunks, documents")
            except StorageError as exc:  # a role that may write but not maintain: autovacuum does it later
                log.info("semsearch: ANALYZE skipped: %s", exc)
