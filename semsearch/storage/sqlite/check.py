"""The local index's own consistency checks, as queries: what `check` compares."""

from __future__ import annotations

import sqlite3

from .database import Database


class CheckQueries(Database):
    """SQLite's integrity check and the rows that should not exist; mixed into `Store`."""

    def roots_and_model(self) -> tuple[list[str], str]:
        """The folders and the model, as far as a damaged database still gives them."""
        try:
            roots = [row[0] for row in self.db.execute("SELECT path FROM roots ORDER BY path")]
        except sqlite3.DatabaseError:
            roots = []
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        except sqlite3.DatabaseError:
            row = None
        return roots, row[0] if row else ""

    def integrity_problems(self) -> list[str]:
        """What SQLite's own quick check reports (empty when the file is sound)."""
        try:
            rows = [row[0] for row in self.db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:  # damage bad enough that the check itself stops
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    def chunks_without_vectors(self) -> list[int]:
        return [row[0] for row in self.db.execute(
            "SELECT chunks.id FROM chunks LEFT JOIN vectors ON vectors.id = chunks.vector_id WHERE vectors.id IS NULL"
        )]

    def chunks_without_documents(self) -> list[int]:
        return [row[0] for row in self.db.execute(
            "SELECT chunks.id FROM chunks LEFT JOIN documents ON documents.id = chunks.document_id"
            " WHERE documents.id IS NULL"
        )]

    def vectors_of_wrong_size(self, dimensions: int) -> list[int]:
        # A waiting text's row is empty until its vector comes (backlog.py).
        return [row[0] for row in self.db.execute(
            "SELECT id FROM vectors WHERE length(vector) != ? AND id NOT IN (SELECT vector_id FROM backlog)", [dimensions * 4]
        )]

    def unused_vector_count(self) -> int:
        return self.db.execute(
            "SELECT count(*) FROM vectors WHERE id NOT IN (SELECT vector_id FROM chunks)"
            " AND id NOT IN (SELECT vector_id FROM chunk_parts)"
        ).fetchone()[0]

    def broken_parts(self) -> int:
        """Chunk parts whose chunk or vector is gone."""
        return self.db.execute(
            "SELECT count(*) FROM chunk_parts WHERE chunk_id NOT IN (SELECT id FROM chunks)"
            " OR vector_id NOT IN (SELECT id FROM vectors)"
        ).fetchone()[0]

    def delete_broken_parts(self) -> None:
        self.db.execute(
            "DELETE FROM chunk_parts WHERE chunk_id NOT IN (SELECT id FROM chunks) OR vector_id NOT IN (SELECT id FROM vectors)"
        )

    def documents_with_missing_chunks(self) -> list[int]:
        """Documents holding fewer chunks than they were written with."""
        return [row[0] for row in self.db.execute(
            "SELECT documents.id FROM documents LEFT JOIN chunks ON chunks.document_id = documents.id"
            " GROUP BY documents.id HAVING count(chunks.id) != documents.chunk_count"
        )]
