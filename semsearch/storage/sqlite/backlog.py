"""Texts waiting for their vectors: chunks are written as soon as they are read, and their
vectors follow.

A text not embedded yet has a `vectors` row like any other, so chunks refer to it as usual,
but with an empty blob, and a `backlog` row holding the text to embed and its priority (the
modification time of the newest document that uses it). When the vector comes, it fills the
row in place and the backlog row goes. Until then the chunk is found by keywords only: the
FAISS cache holds the chunks whose vector is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .database import Database, batches

if TYPE_CHECKING:
    import numpy as np


# A chunk whose vector row is waiting, as SQL: the cache leaves such chunks out.
EMBEDDED = "vector_id NOT IN (SELECT vector_id FROM backlog)"


class BacklogQueries(Database):
    """The backlog of texts to embed; mixed into `Store`."""

    def vector_rows(self, hashes: Iterable[bytes]) -> dict[bytes, tuple[int, bool]]:
        """For each hash that has a vector row: its id, and whether it still waits for its vector."""
        found: dict[bytes, tuple[int, bool]] = {}
        for batch in batches(list(hashes)):
            marks = ",".join("?" * len(batch))
            for digest, vector_id, waiting in self.db.execute(
                "SELECT vectors.hash, vectors.id, backlog.vector_id IS NOT NULL FROM vectors"
                f" LEFT JOIN backlog ON backlog.vector_id = vectors.id WHERE vectors.hash IN ({marks})",
                batch,
            ):
                found[bytes(digest)] = (vector_id, bool(waiting))
        return found

    def add_waiting(self, texts: Sequence[tuple[bytes, str, int]]) -> list[int]:
        """Rows for (hash, text, priority) of texts with no vector row yet; returns their ids.
        As for chunks, ids are given: this transaction is the only writer. Call inside
        `transaction()`."""
        if not texts:
            return []
        first = (self.db.execute("SELECT max(id) FROM vectors").fetchone()[0] or 0) + 1
        ids = list(range(first, first + len(texts)))
        connection = self.db.conn
        connection.executemany(
            "INSERT INTO vectors (id, hash, vector) VALUES (?, ?, x'')", [(number, digest) for number, (digest, _, _) in zip(ids, texts)]
        )
        connection.executemany(
            "INSERT INTO backlog (vector_id, text, priority) VALUES (?, ?, ?)",
            [(number, text, priority) for number, (_, text, priority) in zip(ids, texts)],
        )
        return ids

    def raise_priority(self, priorities: Iterable[tuple[int, int]]) -> None:
        """Move waiting texts (vector id, priority) up to at least these priorities."""
        self.db.conn.executemany(
            "UPDATE backlog SET priority = ? WHERE vector_id = ? AND priority < ?",
            [(priority, vector_id, priority) for vector_id, priority in priorities],
        )

    def fill_vectors(self, vector_ids: Sequence[int], matrix: np.ndarray) -> None:
        """Store the vectors of waiting rows. Call inside `transaction()`."""
        import numpy as np

        rows = np.ascontiguousarray(matrix, dtype="<f4")
        connection = self.db.conn
        connection.executemany("UPDATE vectors SET vector = ? WHERE id = ?", [(row.tobytes(), number) for number, row in zip(vector_ids, rows)])
        connection.executemany("DELETE FROM backlog WHERE vector_id = ?", [(number,) for number in vector_ids])
        self._bump_generation()

    def chunk_vector_ids(self, vector_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(chunk id, vector id) of the chunks whose vector is one of these."""
        found: list[tuple[int, int]] = []
        for batch in batches(list(vector_ids)):
            found += self.db.execute(
                f"SELECT id, vector_id FROM chunks WHERE vector_id IN ({','.join('?' * len(batch))})", batch
            ).fetchall()
        return [(chunk_id, vector_id) for chunk_id, vector_id in found]

    def document_paths(self, document_ids: Sequence[int]) -> list[tuple[str, int]]:
        """(path, id) of these documents."""
        found: list[tuple[str, int]] = []
        for batch in batches(list(document_ids)):
            found += self.db.execute(f"SELECT path, id FROM documents WHERE id IN ({','.join('?' * len(batch))})", batch).fetchall()
        return [(path, document_id) for path, document_id in found]

    def waiting_texts(self, limit: int, exclude: set[bytes]) -> list[tuple[bytes, str]]:
        """Up to `limit` (hash, text) to embed, highest priority first, leaving out `exclude`."""
        found: list[tuple[bytes, str]] = []
        offset = 0
        while len(found) < limit:
            page = limit - len(found) + len(exclude)
            rows = self.db.execute(
                "SELECT vectors.hash, backlog.text FROM backlog JOIN vectors ON vectors.id = backlog.vector_id"
                " ORDER BY backlog.priority DESC, backlog.vector_id LIMIT ? OFFSET ?",
                [page, offset],
            ).fetchall()
            found += [(bytes(digest), text) for digest, text in rows if bytes(digest) not in exclude][: limit - len(found)]
            if len(rows) < page:
                break
            offset += page
        return found

    def has_backlog(self) -> bool:
        return self.db.execute("SELECT 1 FROM backlog LIMIT 1").fetchone() is not None

    def waiting_text_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM backlog").fetchone()[0]

    def backlog_counts(self) -> tuple[int, int]:
        """How many chunks wait for their vector, and how many distinct texts that is."""
        if not self.has_backlog():
            return 0, 0
        texts = self.db.execute("SELECT count(*) FROM backlog").fetchone()[0]
        chunks = self.db.execute("SELECT count(*) FROM chunks WHERE vector_id IN (SELECT vector_id FROM backlog)").fetchone()[0]
        return chunks, texts

    def waiting_among(self, chunk_ids: Sequence[int]) -> set[int]:
        """Which of these chunks wait for their vector."""
        if not chunk_ids or not self.has_backlog():
            return set()
        found: set[int] = set()
        for batch in batches([int(i) for i in chunk_ids]):
            found.update(row[0] for row in self.db.execute(
                f"SELECT id FROM chunks WHERE id IN ({','.join('?' * len(batch))}) AND vector_id IN (SELECT vector_id FROM backlog)",
                batch,
            ))
        return found

    def documents_waiting_for(self, hashes: Iterable[bytes]) -> list[int]:
        """The documents with a chunk (or part) whose waiting text is one of these."""
        found: set[int] = set()
        for batch in batches(list(hashes)):
            marks = ",".join("?" * len(batch))
            waiting = f"SELECT backlog.vector_id FROM backlog JOIN vectors ON vectors.id = backlog.vector_id WHERE vectors.hash IN ({marks})"
            found.update(row[0] for row in self.db.execute(f"SELECT document_id FROM chunks WHERE vector_id IN ({waiting})", batch))
            found.update(row[0] for row in self.db.execute(
                f"SELECT chunks.document_id FROM chunk_parts JOIN chunks ON chunks.id = chunk_parts.chunk_id WHERE chunk_parts.vector_id IN ({waiting})",
                batch,
            ))
        return sorted(found)

    # -- checks -----------------------------------------------------------------------------

    def backlog_problems(self) -> int:
        """Backlog rows whose vector row is gone or already holds its vector."""
        return self.db.execute(
            "SELECT count(*) FROM backlog WHERE vector_id NOT IN (SELECT id FROM vectors WHERE length(vector) = 0)"
        ).fetchone()[0]

    def delete_backlog_problems(self) -> None:
        self.db.execute("DELETE FROM backlog WHERE vector_id NOT IN (SELECT id FROM vectors WHERE length(vector) = 0)")
