"""The documents, chunks and vectors of a local index: written together, read for search.

Vectors are stored once per distinct embedded text (keyed by its hash), so an unchanged
chunk keeps its vector when the file around it changes or moves. FAISS is a cache rebuilt
from these rows. Every change here keeps the keyword index (FTS5) in step, in the same
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .backlog import EMBEDDED
from .database import PARAMETERS, Database, batches, now
from .keywords import keyword_body

if TYPE_CHECKING:
    import numpy as np

    from ...text.chunking import Chunk
    from ..base import DocumentRecord, DocumentState


class ChunkQueries(Database):
    """Documents with their chunks, and vectors by text hash; mixed into `Store`."""

    # Vectors whose chunks this connection deleted: candidates for `delete_unused_vectors`.
    released_vectors: set[int]
    # Rows of waiting texts this connection deleted with the last chunk using them.
    dropped_waiting: set[int]

    if TYPE_CHECKING:

        def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]: ...  # CatalogueQueries

    def touch_documents(self, changes: Iterable[tuple[int, int, int]]) -> None:
        """Record new (document id, size, mtime_ns) of documents whose content did not change."""
        self.db.conn.executemany(
            "UPDATE documents SET size = ?, mtime_ns = ? WHERE id = ?",
            [(size, mtime_ns, document_id) for document_id, size, mtime_ns in changes],
        )

    def replace_documents(
        self,
        documents: Sequence[tuple[DocumentRecord, Sequence[Chunk], Sequence[int]]],
        part_vectors: Mapping[bytes, int] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Write documents, each with its chunks and their vector ids, in place of any earlier
        version of the same path; the chunks' parts with the vector ids `part_vectors` gives
        by text hash (a part without one is left out).

        Returns the chunk ids removed and the chunk ids added. Call inside `transaction()`.
        """
        part_vectors = part_vectors or {}
        # The last of several records for one path wins, as if written one after another.
        latest = list({record.path: (record, chunks, vector_ids) for record, chunks, vector_ids in documents}.values())
        if not latest:
            return [], []
        old = [state.id for state in self.document_states_at(record.path for record, _, _ in latest).values()]
        # The new versions may use the rows of texts their old versions waited for.
        keep = {vector_id for _, _, vector_ids in latest for vector_id in vector_ids} | set(part_vectors.values())
        removed = self._delete_documents(old, keep) if old else []
        # Ids are given here rather than read back row by row; this transaction is the only
        # writer, so nothing else takes them in between.
        document_id = self._next_id("documents")
        chunk_id = self._next_id("chunks")
        written_at = now()
        document_rows, chunk_rows, keyword_rows, part_rows = [], [], [], []
        for record, chunks, vector_ids in latest:
            document_rows.append((
                document_id, record.path, record.kind, record.size, record.mtime_ns, record.content_hash, record.reader,
                record.format, record.title,
                json.dumps(record.metadata, ensure_ascii=False) if record.metadata else None,
                len(chunks), written_at,
            ))
            for ordinal, (chunk, vector_id) in enumerate(zip(chunks, vector_ids)):
                chunk_rows.append((
                    chunk_id, document_id, vector_id, ordinal, chunk.start, chunk.end, chunk.start_line,
                    chunk.end_line, chunk.page, chunk.section, chunk.context, chunk.tokens, chunk.text,
                ))
                keyword_rows.append((chunk_id, keyword_body(chunk.context, chunk.text)))
                for number, part in enumerate(chunk.parts):
                    part_vector = part_vectors.get(part.hash)
                    if part_vector is not None:
                        part_rows.append((chunk_id, number, part.start, part.end, part.section, part_vector))
                chunk_id += 1
            document_id += 1
        connection = self.db.conn
        connection.executemany(
            "INSERT INTO documents (id, path, kind, size, mtime_ns, content_hash, reader, format, title, metadata,"
            " chunk_count, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            document_rows,
        )
        connection.executemany(
            "INSERT INTO chunks (id, document_id, vector_id, ordinal, start_char, end_char, start_line,"
            " end_line, page, section, context, tokens, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            chunk_rows,
        )
        connection.executemany("INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", keyword_rows)
        if part_rows:
            connection.executemany(
                "INSERT INTO chunk_parts (chunk_id, ordinal, start_char, end_char, section, vector_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                part_rows,
            )
        self._bump_generation()
        return removed, [row[0] for row in chunk_rows]

    def _next_id(self, table: str) -> int:
        """The id the next row of an AUTOINCREMENT table gets: past every id it ever held."""
        # Two plain queries: SQLite reads max(id) from the end of the table only when it
        # stands alone, and scans the whole table otherwise.
        largest = self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [table]).fetchone()
        return max(largest, row[0] if row else 0) + 1

    def remove_documents(self, document_ids: Sequence[int]) -> list[int]:
        """Delete documents and their chunks; returns the removed chunk ids. Call inside `transaction()`."""
        removed = self._delete_documents(document_ids)
        self._bump_generation()
        return removed

    def _delete_documents(self, document_ids: Sequence[int], keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
        removed: list[int] = []
        for batch in batches(document_ids):
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                f"SELECT id, vector_id, context, text FROM chunks WHERE document_id IN ({marks})", batch
            ).fetchall()
            self._forget_keywords(rows)
            for chunk_id, vector_id, _, _ in rows:
                removed.append(chunk_id)
                self.released_vectors.add(vector_id)
            parts = self._forget_parts(f"SELECT id FROM chunks WHERE document_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM chunks WHERE document_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM documents WHERE id IN ({marks})", batch)
            self._drop_waiting(({row[1] for row in rows} | parts) - keep)
        return removed

    def _drop_waiting(self, vector_ids: set[int]) -> None:
        """Delete the rows of waiting texts among `vector_ids` that no chunk uses any more (a
        document changed or went before its vectors came): they are not to be embedded. The
        ids go into `dropped_waiting`, for the writer to forget."""
        if not vector_ids:
            return
        for batch in batches(sorted(vector_ids)):
            marks = ",".join("?" * len(batch))
            unused = [row[0] for row in self.db.execute(
                f"SELECT vector_id FROM backlog WHERE vector_id IN ({marks})"
                f" AND vector_id NOT IN (SELECT vector_id FROM chunks WHERE vector_id IN ({marks}))"
                f" AND vector_id NOT IN (SELECT vector_id FROM chunk_parts WHERE vector_id IN ({marks}))",
                batch + batch + batch,
            )]
            if unused:
                marks = ",".join("?" * len(unused))
                self.db.execute(f"DELETE FROM backlog WHERE vector_id IN ({marks})", unused)
                self.db.execute(f"DELETE FROM vectors WHERE id IN ({marks})", unused)
                self.dropped_waiting.update(unused)

    def _forget_parts(self, chunks: str, parameters: list) -> set[int]:
        """Delete the parts of the chunks the query `chunks` selects; their vectors (returned)
        become candidates for `delete_unused_vectors`."""
        where = f"chunk_id IN ({chunks})"
        vectors = {row[0] for row in self.db.execute(f"SELECT vector_id FROM chunk_parts WHERE {where}", parameters)}
        self.released_vectors.update(vectors)
        self.db.execute(f"DELETE FROM chunk_parts WHERE {where}", parameters)
        return vectors

    def _forget_keywords(self, rows: Iterable[tuple[int, int, str | None, str]]) -> None:
        """Remove chunks from the keyword index; rows are (id, vector_id, context, text)."""
        self.db.conn.executemany(
            "INSERT INTO chunks_fts (chunks_fts, rowid, body) VALUES ('delete', ?, ?)",
            [(chunk_id, keyword_body(context, text)) for chunk_id, _, context, text in rows],
        )

    # -- vectors ----------------------------------------------------------------------------

    def vector_ids(self, hashes: Iterable[bytes]) -> dict[bytes, int]:
        """The stored vector id of each hash that has one."""
        found: dict[bytes, int] = {}
        for batch in batches(list(hashes)):
            marks = ",".join("?" * len(batch))
            for row in self.db.execute(f"SELECT hash, id FROM vectors WHERE hash IN ({marks})", batch):
                found[bytes(row[0])] = row[1]
        return found

    def add_vectors(self, hashes: Sequence[bytes], matrix: np.ndarray, *, replace: bool = False, new: bool = False) -> list[int]:
        """Store one vector per hash (float32 little-endian); returns their ids.

        A hash already stored keeps its id; `replace` overwrites its vector. `new`: the
        caller knows that none of these (distinct) hashes is stored, so their ids are given
        rather than read back. Call inside `transaction()`.
        """
        import numpy as np

        connection = self.db.conn
        if new and not replace:
            # As for chunks: this transaction is the only writer.
            first = (self.db.execute("SELECT max(id) FROM vectors").fetchone()[0] or 0) + 1
            ids = list(range(first, first + len(hashes)))
            connection.executemany(
                "INSERT INTO vectors (id, hash, vector) VALUES (?, ?, ?)",
                [(number, digest, row.tobytes()) for number, digest, row in zip(ids, hashes, np.ascontiguousarray(matrix, dtype="<f4"))],
            )
            return ids
        rows = [(digest, row.tobytes()) for digest, row in zip(hashes, np.ascontiguousarray(matrix, dtype="<f4"))]
        if replace:
            connection.executemany("UPDATE vectors SET vector = ? WHERE hash = ?", [(blob, digest) for digest, blob in rows])
        connection.executemany("INSERT OR IGNORE INTO vectors (hash, vector) VALUES (?, ?)", rows)
        stored = self.vector_ids(digest for digest, _ in rows)
        return [stored[digest] for digest, _ in rows]

    def delete_unused_vectors(self, candidates: Iterable[int] | None = None) -> int:
        """Drop vectors no chunk refers to, among `candidates` or all; returns how many.

        Vectors an interrupted run paid for wait, unused, for their documents; only a run
        over every folder may conclude they will not be needed.
        """
        if candidates is None:
            cursor = self.db.execute(
                "DELETE FROM vectors WHERE id NOT IN (SELECT vector_id FROM chunks)"
                " AND id NOT IN (SELECT vector_id FROM chunk_parts)"
            )
            self.db.execute("DELETE FROM backlog WHERE vector_id NOT IN (SELECT id FROM vectors)")
            return cursor.rowcount
        deleted = 0
        for batch in batches(sorted(candidates)):
            marks = ",".join("?" * len(batch))
            cursor = self.db.execute(
                f"DELETE FROM vectors WHERE id IN ({marks}) AND id NOT IN (SELECT vector_id FROM chunks WHERE vector_id IN ({marks}))"
                f" AND id NOT IN (SELECT vector_id FROM chunk_parts WHERE vector_id IN ({marks}))",
                batch + batch + batch,
            )
            deleted += cursor.rowcount
        if deleted:
            # A text that waited for a vector no chunk needs any more is not embedded.
            self.db.execute("DELETE FROM backlog WHERE vector_id NOT IN (SELECT id FROM vectors)")
        return deleted

    # -- reading for search -----------------------------------------------------------------

    def chunk_ids(self) -> np.ndarray:
        import numpy as np

        cursor = self.db.execute("SELECT id FROM chunks ORDER BY id")
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)

    def embedded_chunk_ids(self) -> np.ndarray:
        """The ids of the chunks whose vector is stored (not waiting): what the cache holds."""
        import numpy as np

        if self.db.execute("SELECT 1 FROM backlog LIMIT 1").fetchone() is None:
            return self.chunk_ids()
        cursor = self.db.execute(f"SELECT id FROM chunks WHERE {EMBEDDED} ORDER BY id")
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)

    def chunk_vectors(self, dimensions: int, chunk_ids: np.ndarray | None = None, batch: int = 2048) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (chunk ids, float32 matrix) for all chunks, or for `chunk_ids`, in batches:
        small ones, as building a vector index holds several copies of a batch at once."""
        import numpy as np

        def decode(rows: list) -> tuple[np.ndarray, np.ndarray]:
            ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), dimensions)
            return ids, matrix.astype(np.float32, copy=False)

        if chunk_ids is None:
            cursor = self.db.execute(
                "SELECT chunks.id, vectors.vector FROM chunks JOIN vectors ON vectors.id = chunks.vector_id"
                f" WHERE chunks.{EMBEDDED} ORDER BY chunks.id"
            )
            while rows := cursor.fetchmany(batch):
                yield decode(rows)
            return
        for start in range(0, len(chunk_ids), PARAMETERS):
            part = [int(i) for i in chunk_ids[start : start + PARAMETERS]]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                "SELECT chunks.id, vectors.vector FROM chunks JOIN vectors ON vectors.id = chunks.vector_id"
                f" WHERE chunks.id IN ({marks}) AND chunks.{EMBEDDED}",
                part,
            ).fetchall()
            if rows:
                yield decode(rows)

    def chunk_parts(self, chunk_ids: Sequence[int], dimensions: int) -> dict[int, list[tuple[int, int, str | None, np.ndarray]]]:
        """The parts of each of these chunks that has any: (start, end, section, vector), in order."""
        import numpy as np

        found: dict[int, list[tuple[int, int, str | None, np.ndarray]]] = {}
        for batch in batches([int(i) for i in chunk_ids]):
            marks = ",".join("?" * len(batch))
            for chunk_id, start, end, section, blob in self.db.execute(
                "SELECT chunk_parts.chunk_id, chunk_parts.start_char, chunk_parts.end_char, chunk_parts.section, vectors.vector"
                " FROM chunk_parts JOIN vectors ON vectors.id = chunk_parts.vector_id"
                f" WHERE chunk_parts.chunk_id IN ({marks}) ORDER BY chunk_parts.chunk_id, chunk_parts.ordinal",
                batch,
            ):
                vector = np.frombuffer(blob, dtype="<f4")
                if len(vector) == dimensions:
                    found.setdefault(chunk_id, []).append((start, end, section, vector.astype(np.float32)))
        return found

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The stored facts of each chunk id, with its document's path and title."""
        rows: dict[int, dict[str, Any]] = {}
        for batch in batches([int(i) for i in chunk_ids]):
            marks = ",".join("?" * len(batch))
            for row in self.db.query(
                "SELECT chunks.id AS chunk_id, chunks.document_id, documents.path, documents.kind,"
                " documents.title, documents.format, documents.mtime_ns, documents.metadata, chunks.text,"
                " chunks.start_char, chunks.end_char, chunks.start_line, chunks.end_line, chunks.page,"
                " chunks.section, chunks.ordinal FROM chunks JOIN documents ON documents.id = chunks.document_id"
                f" WHERE chunks.id IN ({marks})",
                batch,
            ):
                rows[row["chunk_id"]] = row
        return rows

    # -- repairs ----------------------------------------------------------------------------

    def delete_chunks(self, chunk_ids: Sequence[int]) -> None:
        """Delete chunks by id. Call inside `transaction()`."""
        if not chunk_ids:
            return
        for batch in batches(list(chunk_ids)):
            marks = ",".join("?" * len(batch))
            self._forget_keywords(self.db.execute(f"SELECT id, vector_id, context, text FROM chunks WHERE id IN ({marks})", batch).fetchall())
            self._forget_parts(marks, batch)
            self.db.execute(f"DELETE FROM chunks WHERE id IN ({marks})", batch)
        self._bump_generation()

    def delete_vectors(self, vector_ids: Sequence[int]) -> None:
        """Delete vectors by id, with the chunks using them. Call inside `transaction()`."""
        if not vector_ids:
            return
        for batch in batches(list(vector_ids)):
            marks = ",".join("?" * len(batch))
            self._forget_keywords(
                self.db.execute(f"SELECT id, vector_id, context, text FROM chunks WHERE vector_id IN ({marks})", batch).fetchall()
            )
            self._forget_parts(f"SELECT id FROM chunks WHERE vector_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM chunk_parts WHERE vector_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM chunks WHERE vector_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM backlog WHERE vector_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM vectors WHERE id IN ({marks})", batch)
        self._bump_generation()

    def forget_content(self, document_ids: Sequence[int]) -> None:
        """Make the next `add` read these documents again. Call inside `transaction()`."""
        for batch in batches(list(document_ids)):
            self.db.execute(
                f"UPDATE documents SET size = NULL, mtime_ns = NULL, content_hash = '' WHERE id IN ({','.join('?' * len(batch))})",
                batch,
            )

    def clear(self) -> None:
        """Delete every document, chunk and vector (folders are kept). Call inside `transaction()`."""
        self.db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")
        self.db.execute("DELETE FROM chunk_parts")
        self.db.execute("DELETE FROM backlog")
        self.db.execute("DELETE FROM chunks")
        self.db.execute("DELETE FROM documents")
        self.db.execute("DELETE FROM vectors")
        self._bump_generation()

    # -- copying ----------------------------------------------------------------------------

    def export_documents(self, dimensions: int) -> Iterator[tuple[DocumentRecord, list[Chunk], list[bytes], dict[bytes, np.ndarray]]]:
        """Every document with its chunks, their text hashes and vectors (see Backend.export_documents)."""
        import numpy as np

        from ..copying import exported

        def vector(blob: bytes) -> np.ndarray:
            return np.frombuffer(blob, dtype="<f4").astype(np.float32)

        documents = self.db.execute(
            "SELECT id, path, kind, content_hash, reader, size, mtime_ns, format, title, metadata FROM documents ORDER BY id"
        ).fetchall()
        for document_id, *fields in documents:
            chunks = self.db.execute(
                "SELECT chunks.id, text, start_char, end_char, start_line, end_line, section, page, tokens, context, hash, vector"
                " FROM chunks JOIN vectors ON vectors.id = chunks.vector_id WHERE document_id = ? ORDER BY ordinal",
                [document_id],
            ).fetchall()
            parts = self.db.execute(
                "SELECT chunk_id, start_char, end_char, section, hash, vector FROM chunk_parts JOIN vectors"
                " ON vectors.id = chunk_parts.vector_id WHERE chunk_id IN (SELECT id FROM chunks WHERE document_id = ?)"
                " ORDER BY chunk_id, ordinal",
                [document_id],
            ).fetchall()
            yield exported(
                fields, [(*row[:10], bytes(row[10]), vector(row[11])) for row in chunks],
                [(*row[:4], bytes(row[4]), vector(row[5])) for row in parts], dimensions,
            )
