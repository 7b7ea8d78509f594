"""The documents, chunks and vectors of a PostgreSQL index: written together, read for search.

Vectors are stored once per distinct embedded text (keyed by its hash), as float32, and
found through an HNSW index over their half-precision copies; every score is then computed
from the float32 vectors, so only the order of near ties can differ from exact search.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .database import PostgresDatabase

if TYPE_CHECKING:
    import numpy as np

    from ...text.chunking import Chunk
    from ..base import DocumentRecord, DocumentState

# A filter admitting at most this many chunks is searched exactly (a scan of their vectors
# costs less than walking the graph past everything the filter refuses).
EXACT_BELOW = 20_000
# An indexing run that starts with fewer vectors than this builds the HNSW index when it
# ends instead of inserting into it row by row (see `defer_vector_index`).
BUILD_AFTER_BELOW = 10_000
# Working memory an HNSW build may ask for, at most (in kB): for the graph of 1M vectors of
# 384 dimensions with 48 neighbours a node, `_build_memory` asks about 3 GB; past what it is
# given, the build goes on on disk, several times slower. The server takes it only as the
# graph grows.
BUILD_MEMORY_KB = 4 * 1024 * 1024
# The graph walk's candidate list (hnsw.ef_search), the longest pgvector allows. On 1M
# synthetic vectors (benchmarks/README.md) dense recall@10 against exact search was 0.934 at
# 400, 0.955 at 600, 0.957 at 800 and 0.968 at 1000, the walk taking 12 to 15 ms.
EF_SEARCH = 1000
# A filtered search walks the graph unfiltered for FILTER_MARGIN times the rows the
# filter's share of chunks makes the expected number (and eight times longer if they still
# fall short), and keeps the admitted ones; past POST_FILTER_MOST rows, the filter goes to SQL.
FILTER_MARGIN = 2.0
POST_FILTER_MOST = 20_000
# Candidates taken from the walk, to be scored exactly: twice those wanted, and at least
# EXTRA_CANDIDATES more (more made no difference to recall: the walk's order by half precision
# is close to exact, its misses are what ef_search fixes; and every row taken costs a join).
EXTRA_CANDIDATES = 30
# Cosine similarity, 0 where a zero vector makes it undefined (as FAISS scores it).
_SCORE = "COALESCE(NULLIF(1 - (v.embedding <=> %(q)s), 'NaN'), 0)"


def _sorted(ids: np.ndarray) -> np.ndarray:
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64)
    return ids if len(ids) < 2 or bool(np.all(ids[1:] >= ids[:-1])) else np.sort(ids)


def _members(ordered: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Which of `ids` are in the sorted array `ordered`."""
    import numpy as np

    found = np.asarray(ids, dtype=np.int64)
    at = np.minimum(np.searchsorted(ordered, found), len(ordered) - 1)
    return ordered[at] == found


class ChunkQueries(PostgresDatabase):
    """Documents with their chunks, and vectors by text hash; mixed into `PostgresStore`."""

    # Vectors whose chunks this connection deleted: candidates for `delete_unused_vectors`.
    released_vectors: set[int]

    if TYPE_CHECKING:

        def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]: ...  # CatalogueQueries

    def touch_documents(self, changes: Iterable[tuple[int, int, int]]) -> None:
        self.executemany(
            "UPDATE documents SET size = %s, mtime_ns = %s WHERE id = %s",
            [(size, mtime_ns, document_id) for document_id, size, mtime_ns in changes],
        )

    def replace_documents(
        self,
        documents: Sequence[tuple[DocumentRecord, Sequence[Chunk], Sequence[int]]],
        part_vectors: Mapping[bytes, int] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Write documents in place of any earlier version of the same path; returns the
        chunk ids removed and added. A file whose stored version is newer (another indexer
        read it after this one) is left as it is: the later read wins. Call inside
        `transaction()`."""
        from .keywords import keyword_words

        part_vectors = part_vectors or {}
        latest = {record.path: (record, chunks, vector_ids) for record, chunks, vector_ids in documents}
        if not latest:
            return [], []
        old = self.document_states_at(latest)
        for path, state in old.items():
            record = latest[path][0]
            if record.kind == "file" and state.mtime_ns is not None and record.mtime_ns is not None and state.mtime_ns > record.mtime_ns:
                del latest[path]
        # The new versions may use the rows of texts their old versions waited for.
        keep = {vector_id for _, _, vector_ids in latest.values() for vector_id in vector_ids} | set(part_vectors.values())
        removed = self.delete_documents([old[path].id for path in latest if path in old], keep)
        if not latest:
            return removed, []
        document_ids = self._ids("documents_id_seq", len(latest))
        chunk_total = sum(len(chunks) for _, chunks, _ in latest.values())
        chunk_ids = iter(self._ids("chunks_id_seq", chunk_total))
        document_rows, chunk_rows, part_rows, added = [], [], [], []
        tokens = 0
        for document_id, (record, chunks, vector_ids) in zip(document_ids, latest.values()):
            document_rows.append((
                document_id, record.path, record.kind, record.size, record.mtime_ns, record.content_hash, record.reader,
                record.format, record.title,
                json.dumps(record.metadata, ensure_ascii=False) if record.metadata else None, len(chunks),
            ))
            for ordinal, (chunk, vector_id) in enumerate(zip(chunks, vector_ids)):
                chunk_id = next(chunk_ids)
                words = keyword_words(chunk.context, chunk.text)
                tokens += len(words)
                chunk_rows.append((
                    chunk_id, document_id, vector_id, ordinal, chunk.start, chunk.end, chunk.start_line, chunk.end_line,
                    chunk.page, chunk.section, chunk.context, chunk.tokens, chunk.text, " ".join(words), len(words),
                ))
                added.append(chunk_id)
                for number, part in enumerate(chunk.parts):
                    part_vector = part_vectors.get(part.hash)
                    if part_vector is not None:
                        part_rows.append((chunk_id, number, part.start, part.end, part.section, part_vector))
        self.executemany(
            "INSERT INTO documents (id, path, kind, size, mtime_ns, content_hash, reader, format, title, metadata,"
            " chunk_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            document_rows,
        )
        self.executemany(
            "INSERT INTO chunks (id, document_id, vector_id, ordinal, start_char, end_char, start_line, end_line,"
            " page, section, context, tokens, text, keywords, keyword_length)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, to_tsvector('semsearch', %s), %s)",
            chunk_rows,
        )
        self.executemany(
            "INSERT INTO chunk_parts (chunk_id, ordinal, start_char, end_char, section, vector_id) VALUES (%s, %s, %s, %s, %s, %s)",
            part_rows,
        )
        self.execute("UPDATE keyword_totals SET chunks = chunks + %s, tokens = tokens + %s", [len(chunk_rows), tokens])
        return removed, added

    def _ids(self, sequence: str, count: int) -> list[int]:
        if not count:
            return []
        return [row[0] for row in self.rows("SELECT nextval(%s) FROM generate_series(1, %s)", [sequence, count])]

    def delete_documents(self, document_ids: Sequence[int], keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Delete documents and their chunks; returns the removed chunk ids. Call inside `transaction()`."""
        if not document_ids:
            return []
        ids = [int(i) for i in document_ids]
        removed = self._delete_chunks_where("document_id = ANY(%s)", [ids], keep)
        self.execute("DELETE FROM documents WHERE id = ANY(%s)", [ids])
        return removed

    def _delete_chunks_where(self, condition: str, parameters: list, keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
        parts = {row[0] for row in self.rows(f"SELECT vector_id FROM chunk_parts WHERE chunk_id IN (SELECT id FROM chunks WHERE {condition})", parameters)}
        self.released_vectors.update(parts)
        rows = self.rows(f"DELETE FROM chunks WHERE {condition} RETURNING id, keyword_length, vector_id", parameters)
        self.released_vectors.update(row[2] for row in rows)
        # A text that waited for a vector no chunk needs any more is not to be embedded.
        self.execute(
            "DELETE FROM vectors v WHERE v.id = ANY(%s) AND v.embedding IS NULL AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector_id = v.id)"
            " AND NOT EXISTS (SELECT 1 FROM chunk_parts p WHERE p.vector_id = v.id)",
            [sorted(({row[2] for row in rows} | parts) - keep)],
        )
        if rows:
            self.execute(
                "UPDATE keyword_totals SET chunks = chunks - %s, tokens = tokens - %s", [len(rows), sum(row[1] for row in rows)]
            )
        return [row[0] for row in rows]

    def delete_chunks(self, chunk_ids: Sequence[int]) -> None:
        self._delete_chunks_where("id = ANY(%s)", [[int(i) for i in chunk_ids]])

    def forget_content(self, document_ids: Sequence[int]) -> None:
        """Make the next `add` read these documents again. Call inside `transaction()`."""
        self.execute("UPDATE documents SET size = NULL, mtime_ns = NULL, content_hash = '' WHERE id = ANY(%s)", [list(document_ids)])

    def clear(self) -> None:
        """Delete every document, chunk and vector (folders are kept). Call inside `transaction()`."""
        self.execute("TRUNCATE chunk_parts, chunks, documents, backlog, vectors")
        self.released_vectors.clear()
        self.execute("DROP INDEX IF EXISTS vectors_hnsw")
        self.execute("UPDATE keyword_totals SET chunks = 0, tokens = 0")
        self.execute("DELETE FROM meta WHERE key = 'dimensions'")
        self._dimensions = None

    # -- vectors ----------------------------------------------------------------------------

    def vector_ids(self, hashes: Iterable[bytes]) -> dict[bytes, int]:
        return {bytes(row[0]): row[1] for row in self.rows("SELECT hash, id FROM vectors WHERE hash = ANY(%s)", [list(hashes)])}

    def add_vectors(self, hashes: Sequence[bytes], matrix: np.ndarray, *, replace: bool = False) -> list[int]:
        """Store one vector per hash; a hash already stored keeps its id (and, with `replace`,
        takes the new vector); a waiting text's row takes its vector and leaves the backlog.
        Call inside `transaction()`."""
        import numpy as np

        rows = [(digest, row) for digest, row in zip(hashes, np.asarray(matrix, dtype=np.float32))]
        only = "" if replace else " WHERE vectors.embedding IS NULL"
        # In hash order, so two writers' inserts can never wait on each other crosswise.
        self.executemany(
            f"INSERT INTO vectors (hash, embedding) VALUES (%s, %s) ON CONFLICT (hash) DO UPDATE SET embedding = EXCLUDED.embedding{only}",
            sorted(rows, key=lambda row: row[0]),
        )
        ids = self.vector_ids(hashes)
        self.execute("DELETE FROM backlog WHERE vector_id = ANY(%s)", [sorted(ids.values())])
        return [ids[digest] for digest in hashes]

    def vector_rows(self, hashes: Iterable[bytes]) -> dict[bytes, tuple[int, bool]]:
        """For each hash that has a vector row: its id, and whether it still waits for its vector."""
        return {
            bytes(digest): (vector_id, waiting)
            for digest, vector_id, waiting in self.rows(
                "SELECT hash, id, embedding IS NULL FROM vectors WHERE hash = ANY(%s)", [list(hashes)]
            )
        }

    def add_waiting(self, texts: Sequence[tuple[bytes, str, int]]) -> None:
        """Rows for (hash, text, priority) of texts to wait for their vectors, unless another
        writer stored one meanwhile. Call inside `transaction()`."""
        ordered = sorted(texts)
        self.executemany("INSERT INTO vectors (hash) VALUES (%s) ON CONFLICT (hash) DO NOTHING", [(digest,) for digest, _, _ in ordered])
        ids = self.vector_ids(digest for digest, _, _ in ordered)
        self.executemany(
            "INSERT INTO backlog (vector_id, text, priority) SELECT id, %s, %s FROM vectors WHERE id = %s AND embedding IS NULL"
            " ON CONFLICT (vector_id) DO UPDATE SET priority = GREATEST(backlog.priority, EXCLUDED.priority)",
            [(text, priority, ids[digest]) for digest, text, priority in ordered],
        )

    def waiting_texts(self, limit: int, offset: int) -> list[tuple[bytes, str]]:
        """(hash, text) of the backlog, highest priority first, from `offset`."""
        return [
            (bytes(digest), text)
            for digest, text in self.rows(
                "SELECT v.hash, b.text FROM backlog b JOIN vectors v ON v.id = b.vector_id"
                " ORDER BY b.priority DESC, b.vector_id LIMIT %s OFFSET %s",
                [limit, offset],
            )
        ]

    def backlog_counts(self) -> tuple[int, int]:
        """How many chunks wait for their vector, and how many distinct texts that is."""
        texts = self.scalar("SELECT count(*) FROM backlog")
        if not texts:
            return 0, 0
        return self.scalar("SELECT count(*) FROM chunks WHERE vector_id IN (SELECT vector_id FROM backlog)"), texts

    def waiting_among(self, chunk_ids: Sequence[int]) -> set[int]:
        if not chunk_ids:
            return set()
        return {
            row[0] for row in self.rows(
                "SELECT id FROM chunks WHERE id = ANY(%s) AND vector_id IN (SELECT vector_id FROM backlog)", [[int(i) for i in chunk_ids]]
            )
        }

    def documents_waiting_for(self, hashes: Sequence[bytes]) -> list[tuple[int, str, str]]:
        """(id, path, kind) of the documents with a chunk (or part) waiting for one of these texts."""
        waiting = "SELECT b.vector_id FROM backlog b JOIN vectors v ON v.id = b.vector_id WHERE v.hash = ANY(%(h)s)"
        return self.rows(
            "SELECT id, path, kind FROM documents WHERE id IN ("
            f"SELECT document_id FROM chunks WHERE vector_id IN ({waiting}) UNION "
            f"SELECT c.document_id FROM chunk_parts p JOIN chunks c ON c.id = p.chunk_id WHERE p.vector_id IN ({waiting}))",
            {"h": list(hashes)},
        )

    def ensure_vector_index(self, dimensions: int) -> None:
        """Make the HNSW index if it is missing, unless this connection loads without it."""
        from .migrations import vector_index_sql

        # Looked up first: CREATE INDEX IF NOT EXISTS is refused to a role that does not own the table.
        if not self.index_deferred and not self.has_vector_index():
            self.execute(vector_index_sql(dimensions))

    def defer_vector_index(self) -> None:
        """At the start of an indexing run: into an index of fewer than BUILD_AFTER_BELOW
        vectors (or one whose HNSW index a killed run left unbuilt), load without the HNSW
        index and build it when the run ends (`build_deferred_index`). Searches meanwhile
        score every vector exactly, which is fast at that size. Another indexer running at
        the same time may build it first; then the rest of this run inserts into it."""
        # Only the table's owner may drop and make its indexes (other indexing roles insert).
        if not self.scalar("SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = 'vectors'::regclass"):
            return
        if self.has_vector_index() and self.scalar("SELECT count(*) FROM (SELECT 1 FROM vectors LIMIT %s) AS v", [BUILD_AFTER_BELOW]) >= BUILD_AFTER_BELOW:
            return
        with self.transaction():
            self.execute("DROP INDEX IF EXISTS vectors_hnsw")
        self.index_deferred = True

    def build_deferred_index(self) -> None:
        """At the end of a run that loaded without the HNSW index: build it, with enough
        working memory for the graph to be built in memory (BUILD_MEMORY at most; past
        what the server's maintenance_work_mem grants, the build slows several times)."""
        if not self.index_deferred:
            return
        self.index_deferred = False
        dimensions = self.dimensions()
        if dimensions is None or self.has_vector_index():
            return
        with self.transaction():
            memory = self._build_memory(dimensions)
            if memory:
                self.execute(f"SET LOCAL maintenance_work_mem = '{memory}kB'")
            self.ensure_vector_index(dimensions)

    def _build_memory(self, dimensions: int) -> int | None:
        """The working memory (kB) an HNSW build of the vectors should ask for, when the
        server's maintenance_work_mem grants less."""
        from .migrations import HNSW_M

        vectors = self.scalar("SELECT count(*) FROM vectors")
        # A graph node: the half-precision vector, its neighbours (2 x HNSW_M on the lowest
        # layer, with their distances, fewer above) and pgvector's bookkeeping, with room to spare.
        wanted = int(vectors * (2 * dimensions + 2 * HNSW_M * 16 + 100) * 1.3) // 1024 + 1
        granted = self.scalar("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")
        return min(wanted, BUILD_MEMORY_KB) if granted is not None and wanted > granted else None

    def vector_index_options(self) -> dict[str, int] | None:
        """The options (m, ef_construction) the HNSW index was built with; None without one."""
        from .migrations import PGVECTOR_DEFAULTS

        row = self.rows("SELECT reloptions FROM pg_class WHERE oid = to_regclass('vectors_hnsw')")
        if not row:
            return None
        options = dict(PGVECTOR_DEFAULTS)
        for option in row[0][0] or []:
            key, _, value = option.partition("=")
            options[key] = int(value)
        return options

    def rebuild_vector_index(self, dimensions: int) -> None:
        """Build the HNSW index again with today's options, beside the old one, which searches
        keep using until the new one takes its place (CREATE INDEX CONCURRENTLY, so the table
        stays open to reads and writes meanwhile). Outside any transaction. A rebuild
        stopped halfway leaves an invalid `vectors_hnsw_new`, dropped by the next one."""
        from .migrations import vector_index_sql

        self.execute("DROP INDEX IF EXISTS vectors_hnsw_new")
        memory = self._build_memory(dimensions)
        if memory:
            self.execute(f"SET maintenance_work_mem = '{memory}kB'")
        try:
            self.execute(vector_index_sql(dimensions, name="vectors_hnsw_new", concurrently=True))
        finally:
            if memory:
                self.execute("RESET maintenance_work_mem")
        with self.transaction():
            self.execute("DROP INDEX IF EXISTS vectors_hnsw")
            self.execute("ALTER INDEX vectors_hnsw_new RENAME TO vectors_hnsw")

    def has_vector_index(self) -> bool:
        return bool(self.scalar("SELECT to_regclass('vectors_hnsw') IS NOT NULL"))

    def delete_unused_vectors(self, candidates: Iterable[int] | None = None) -> int:
        """Drop vectors no chunk refers to, among `candidates` or all; returns how many."""
        among = "" if candidates is None else "v.id = ANY(%s) AND"
        rows = self.rows(
            f"DELETE FROM vectors v WHERE {among} NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector_id = v.id)"
            " AND NOT EXISTS (SELECT 1 FROM chunk_parts p WHERE p.vector_id = v.id) RETURNING id",
            None if candidates is None else [sorted(candidates)],
        )
        return len(rows)

    # -- reading for search -----------------------------------------------------------------

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[list[int], list[float]]:
        """The `k` chunks nearest `vector`, best first; only among `allowed` when given."""
        import numpy as np

        dimensions = self.dimensions()
        if dimensions is None or k <= 0:
            return [], []
        if allowed is not None and not len(allowed):
            return [], []
        query = np.asarray(vector, dtype=np.float32)
        # The graph walk's order is approximate (and relaxed under a filter): more candidates
        # than wanted are taken, scored exactly, and cut to `k`.
        candidates = k + max(k, EXTRA_CANDIDATES)
        parameters: dict[str, Any] = {"q": query, "k": k}
        rows: list[tuple] = []
        short = False
        approximate = self.has_vector_index() and (allowed is None or len(allowed) > EXACT_BELOW)
        if approximate:
            if allowed is None:
                rows = self._walk(query, dimensions, candidates, None)
                # Fewer than wanted: the index holds fewer chunks (or some wait for vectors).
                short = len(rows) < k and len(rows) < self.scalar("SELECT chunks FROM keyword_totals")
            else:
                # A filter that admits a large share is applied to the walk's rows here: a walk
                # FILTER_MARGIN times as long as the share makes likely finds enough of them. One
                # admitting less would need too long a walk: its ids go to SQL, where pgvector's
                # iterative scan walks until enough rows pass (seconds at 1M for a share of 3%).
                admitted = _sorted(allowed)
                total = max(self.scalar("SELECT chunks FROM keyword_totals"), 1)
                walk = math.ceil(candidates * total / len(admitted) * FILTER_MARGIN)
                wanted = min(k, len(admitted))
                if walk > POST_FILTER_MOST:
                    rows = self._walk(query, dimensions, candidates, admitted)
                else:
                    rows = self._walk_keeping(query, dimensions, walk, admitted, candidates, wanted)
                short = len(rows) < wanted
        if not approximate or short:
            parameters["allowed"] = None if allowed is None else [int(i) for i in allowed]
            source = "chunks c" if allowed is None else "unnest(%(allowed)s::bigint[]) AS a(id) JOIN chunks c ON c.id = a.id"
            rows = self.rows(
                f"SELECT c.id, {_SCORE} AS score FROM {source} JOIN vectors v ON v.id = c.vector_id"
                " WHERE v.embedding IS NOT NULL ORDER BY score DESC, c.id LIMIT %(k)s",
                parameters,
            )
        rows.sort(key=lambda row: (-row[1], row[0]))
        rows = rows[:k]
        return [row[0] for row in rows], [float(row[1]) for row in rows]

    def _walk_keeping(
        self, query: np.ndarray, dimensions: int, walk: int, admitted: np.ndarray, candidates: int, wanted: int
    ) -> list[tuple]:
        """The first `candidates` admitted rows of an unfiltered walk of `walk` rows, walked
        again eight times longer (up to POST_FILTER_MOST) while fewer than `wanted` are found
        and the walk had not reached the end."""
        while True:
            rows = self._walk(query, dimensions, walk, None)
            kept = [row for row, keep in zip(rows, _members(admitted, [row[0] for row in rows])) if keep][:candidates]
            if len(kept) >= wanted or len(rows) < walk or walk >= POST_FILTER_MOST:
                return kept
            walk = min(walk * 8, POST_FILTER_MOST)

    def _walk(self, query: np.ndarray, dimensions: int, limit: int, admitted: np.ndarray | None) -> list[tuple]:
        """The first `limit` rows of the HNSW walk from `query` (only `admitted` chunks, when
        given), with their exact scores."""
        parameters: dict[str, Any] = {"q": query, "limit": limit}
        where = ""
        if admitted is not None:
            parameters["allowed"] = [int(i) for i in admitted]
            where = "AND c.id IN (SELECT unnest(%(allowed)s::bigint[]))"
        with self.snapshot():
            # pgvector 0.8: past ef_search rows the walk goes on (iterative scan) until the
            # limit is reached or, under a filter, enough rows pass it.
            self.execute(f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {EF_SEARCH}")
            return self.rows(
                f"SELECT c.id, {_SCORE} FROM vectors v JOIN chunks c ON c.vector_id = v.id WHERE v.embedding IS NOT NULL {where}"
                f" ORDER BY v.embedding::halfvec({dimensions}) <=> %(q)s::vector::halfvec({dimensions}) LIMIT %(limit)s",
                parameters,
            )

    def chunk_vectors(self, after: int = 0, batch: int = 10_000) -> list[tuple[int, bytes, np.ndarray]]:
        """(chunk id, text hash, vector) of chunks after id `after`, in id order, a batch at a time."""
        return self.rows(
            "SELECT c.id, v.hash, v.embedding FROM chunks c JOIN vectors v ON v.id = c.vector_id"
            " WHERE c.id > %s AND v.embedding IS NOT NULL ORDER BY c.id LIMIT %s",
            [after, batch],
        )

    def chunk_parts(self, chunk_ids: Sequence[int], dimensions: int) -> dict[int, list[tuple[int, int, str | None, np.ndarray]]]:
        import numpy as np

        found: dict[int, list[tuple[int, int, str | None, np.ndarray]]] = {}
        for chunk_id, start, end, section, vector in self.rows(
            "SELECT p.chunk_id, p.start_char, p.end_char, p.section, v.embedding FROM chunk_parts p"
            " JOIN vectors v ON v.id = p.vector_id WHERE p.chunk_id = ANY(%s) AND v.embedding IS NOT NULL ORDER BY p.chunk_id, p.ordinal",
            [[int(i) for i in chunk_ids]],
        ):
            vector = np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)
            if len(vector) == dimensions:
                found.setdefault(chunk_id, []).append((start, end, section, vector))
        return found

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        from psycopg.rows import dict_row

        sql = (
            "SELECT c.id AS chunk_id, c.document_id, d.path, d.kind, d.title, d.format, d.mtime_ns, d.metadata, c.text,"
            " c.start_char, c.end_char, c.start_line, c.end_line, c.page, c.section, c.ordinal"
            " FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ANY(%s)"
        )
        import psycopg

        from .connection import database_error

        try:
            with self.conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(sql, [[int(i) for i in chunk_ids]])
                return {row["chunk_id"]: row for row in cursor.fetchall()}
        except psycopg.Error as exc:
            raise database_error(exc, self.url) from None

    # -- copying ----------------------------------------------------------------------------

    def export_documents(self, dimensions: int) -> Iterator[tuple[DocumentRecord, list[Chunk], list[bytes], dict[bytes, np.ndarray]]]:
        """Every document with its chunks, their text hashes and vectors (see Backend.export_documents)."""
        import numpy as np

        from ..copying import exported

        def vector(value: Any) -> np.ndarray:
            return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)

        documents = self.rows(
            "SELECT id, path, kind, content_hash, reader, size, mtime_ns, format, title, metadata FROM documents ORDER BY id"
        )
        for document_id, *fields in documents:
            chunks = self.rows(
                "SELECT c.id, c.text, c.start_char, c.end_char, c.start_line, c.end_line, c.section, c.page, c.tokens,"
                " c.context, v.hash, v.embedding FROM chunks c JOIN vectors v ON v.id = c.vector_id"
                " WHERE c.document_id = %s ORDER BY c.ordinal",
                [document_id],
            )
            parts = self.rows(
                "SELECT p.chunk_id, p.start_char, p.end_char, p.section, v.hash, v.embedding FROM chunk_parts p"
                " JOIN vectors v ON v.id = p.vector_id JOIN chunks c ON c.id = p.chunk_id WHERE c.document_id = %s"
                " ORDER BY p.chunk_id, p.ordinal",
                [document_id],
            )
            yield exported(
                fields, [(*row[:10], bytes(row[10]), vector(row[11])) for row in chunks],
                [(*row[:4], bytes(row[4]), vector(row[5])) for row in parts], dimensions,
            )
