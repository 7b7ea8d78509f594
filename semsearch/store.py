"""The SQLite database: the index's source of truth, and the only module that writes SQL.

Documents, their chunks, the chunks' vectors and the index settings live here. Vectors are
stored once per distinct embedded text (keyed by its hash), so an unchanged chunk keeps its
vector when the file around it changes or moves. FAISS is a cache rebuilt from these rows.

Every change that touches chunks bumps `generation`, which the FAISS file records, so a
reader can tell in one query whether its cache is current.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StorageError
from .keyword_store import KeywordQueries

if TYPE_CHECKING:
    import numpy as np

    from .chunking import Chunk

DATABASE_NAME = "index.db"
# SQLite's default limit on host parameters is 999 in older builds.
_PARAMETERS = 900


@dataclass(frozen=True)
class DocumentState:
    """What the index remembers about a document, to tell whether it changed."""

    id: int
    path: str
    size: int | None
    mtime_ns: int | None
    content_hash: str | None
    reader: int = 0


@dataclass
class DocumentRecord:
    """A document about to be written."""

    path: str
    kind: str  # "file" or "text"
    content_hash: str
    reader: int = 0
    size: int | None = None
    mtime_ns: int | None = None
    format: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None


def keyword_body(context: str | None, text: str) -> str:
    # Imported on first use (chunking brings in the readers), then bound here: this runs
    # for every chunk written or deleted, and an import statement costs more than the call.
    global _with_context, _keyword_text
    if _keyword_text is None:
        from .chunking import with_context as _with_context
        from .keywords import keyword_text as _keyword_text
    return _keyword_text(_with_context(context, text))


_with_context = _keyword_text = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Store(KeywordQueries):
    """One index database. Not shared between threads."""

    def __init__(self, directory: Path) -> None:
        import sqlite_utils

        self.path = directory / DATABASE_NAME
        # Vectors whose chunks this connection deleted: candidates for `delete_unused_vectors`.
        self.released_vectors: set[int] = set()
        self._chunk_count: tuple[int, int] | None = None  # (generation, count)
        self._common_terms: tuple[int, dict[str, int], int] | None = None  # (generation, term -> doc count, at chunks)
        self._scratch_ready = False
        # Each query word as the keyword index stores it (the tokenizer never changes), and
        # the chunk counts of the terms searched for this generation: repeated query words
        # are not analysed or counted again.
        self._index_forms: dict[str, str | None] = {}
        self._term_counts: tuple[int, dict[str, int]] = (-1, {})
        # A folder we cannot write still lets the index be searched (see _read_only).
        self.readonly = self.path.exists() and not os.access(directory, os.W_OK)
        try:
            if self.readonly:
                connection = _read_only(self.path)
            else:
                connection = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self.db = sqlite_utils.Database(connection, execute_plugins=False)
            # BM25 reads the length of every chunk a keyword search matches (thousands, at
            # random): 32 MiB of page cache, filled as pages are read, keeps those lengths
            # (10 MB at a million chunks) in memory where SQLite's 2 MB default cannot.
            self.db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
            from . import migrations as schema

            if self.readonly:
                if schema.needs_upgrade(self.db):
                    raise StorageError(f"The index at {directory} needs an upgrade, but its folder is not writable.")
                return
            # In WAL mode NORMAL keeps every commit safe from a crashed process; only a
            # power cut can lose the last transactions, never corrupt the file.
            self.db.execute("PRAGMA synchronous=NORMAL")
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal" or schema.needs_upgrade(self.db):
                # Processes opening a new (or older) index at once take turns: the second
                # finds the work done instead of creating the same tables again.
                from .locking import write_lock

                with write_lock(directory):
                    self.db.enable_wal()
                    schema.upgrade(self.db)
        except sqlite3.DatabaseError as exc:
            raise storage_error(exc, self.path) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write; SQLite errors become StorageError with advice."""
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as exc:
            raise storage_error(exc, self.path) from None

    # -- settings ---------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self.db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def _bump_generation(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def add_roots(self, roots: Iterable[str]) -> None:
        for root in roots:
            self.db.execute("INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)", [root, _now()])

    def remove_roots(self, paths: Sequence[str]) -> None:
        """Forget folders at or under `paths`, and the files skipped there."""
        for path in paths:
            prefix = path.rstrip("/") + "/"
            self.db.execute("DELETE FROM roots WHERE path = ? OR substr(path, 1, ?) = ?", [path, len(prefix), prefix])
            self.db.execute("DELETE FROM skipped_files WHERE path = ? OR substr(path, 1, ?) = ?", [path, len(prefix), prefix])

    def roots(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT path FROM roots ORDER BY path")]

    def set_root_patterns(self, root: str, include: Sequence[str], exclude: Sequence[str]) -> None:
        """Remember the include/exclude patterns for a folder (added with `add_roots`)."""
        self._change_root_settings(root, include=list(include), exclude=list(exclude))

    def set_root_size_limit(self, root: str, limit: int | None) -> None:
        """Remember the file size limit a folder was indexed with (None: no limit)."""
        self._change_root_settings(root, max_file_size=limit)

    def root_patterns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """The remembered (include, exclude) patterns of each folder that has any."""
        found = {}
        for path, settings in self._root_settings().items():
            if settings.get("include") or settings.get("exclude"):
                found[path] = (tuple(settings.get("include", ())), tuple(settings.get("exclude", ())))
        return found

    def root_size_limits(self) -> dict[str, int | None]:
        """The remembered file size limit of each folder indexed with one given."""
        return {path: settings["max_file_size"] for path, settings in self._root_settings().items() if "max_file_size" in settings}

    def _root_settings(self) -> dict[str, dict[str, Any]]:
        # Kept as JSON in the `patterns` column (migration m004), which began with the patterns.
        return {path: json.loads(value) for path, value in self.db.execute("SELECT path, patterns FROM roots WHERE patterns IS NOT NULL")}

    def _change_root_settings(self, root: str, **changes: Any) -> None:
        row = self.db.execute("SELECT patterns FROM roots WHERE path = ?", [root]).fetchone()
        settings = {**(json.loads(row[0]) if row and row[0] else {}), **changes}
        kept = {key: value for key, value in settings.items() if key == "max_file_size" or value}
        self.db.execute("UPDATE roots SET patterns = ? WHERE path = ?", [json.dumps(kept) if kept else None, root])

    # -- skipped files ----------------------------------------------------------------------

    def skipped_states(self, roots: Sequence[str]) -> dict[str, tuple[str, int | None, int | None, int | None]]:
        """Files skipped at or under `roots` by the last run: path -> (reason, size, mtime_ns, reader)."""
        found = {}
        for root in roots:
            prefix = root.rstrip("/") + "/"
            for path, *state in self.db.execute(
                "SELECT path, reason, size, mtime_ns, reader FROM skipped_files WHERE path = ? OR substr(path, 1, ?) = ?",
                [root, len(prefix), prefix],
            ):
                found[path] = tuple(state)
        return found

    def replace_skipped(self, roots: Sequence[str], skipped: Iterable[Any], reader: int) -> None:
        """Record this run's skipped files (objects with path, reason, size, mtime_ns) in place
        of those the last run recorded at or under `roots`. Call inside `transaction()`."""
        for root in roots:
            prefix = root.rstrip("/") + "/"
            self.db.execute("DELETE FROM skipped_files WHERE path = ? OR substr(path, 1, ?) = ?", [root, len(prefix), prefix])
        now = _now()
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO skipped_files (path, reason, size, mtime_ns, reader, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (item.path, item.reason, item.size, item.mtime_ns, reader if item.size is not None else None, now)
                for item in skipped
            ],
        )

    def skipped_files(self) -> list[tuple[str, str]]:
        """Every recorded skipped file as (path, reason), by reason then path."""
        return [tuple(row) for row in self.db.execute("SELECT path, reason FROM skipped_files ORDER BY reason, path")]

    # -- documents --------------------------------------------------------------------------

    def document_states(self, roots: Sequence[str]) -> dict[str, DocumentState]:
        """Indexed files at or under each of `roots` (absolute paths), by path."""
        states: dict[str, DocumentState] = {}
        for root in roots:
            prefix = root.rstrip("/") + "/"
            rows = self.db.execute(
                "SELECT id, path, size, mtime_ns, content_hash, reader FROM documents"
                " WHERE kind = 'file' AND (path = ? OR substr(path, 1, ?) = ?)",
                [root, len(prefix), prefix],
            )
            for row in rows:
                states[row[1]] = DocumentState(*row)
        return states

    def document_states_at(self, paths: Iterable[str]) -> dict[str, DocumentState]:
        """The indexed documents at exactly these paths (or record ids), by path."""
        states: dict[str, DocumentState] = {}
        for batch in _batches(list(paths)):
            marks = ",".join("?" * len(batch))
            for row in self.db.execute(
                f"SELECT id, path, size, mtime_ns, content_hash, reader FROM documents WHERE path IN ({marks})", batch
            ):
                states[row[1]] = DocumentState(*row)
        return states

    def touch_documents(self, changes: Iterable[tuple[int, int, int]]) -> None:
        """Record new (document id, size, mtime_ns) of documents whose content did not change."""
        self.db.conn.executemany(
            "UPDATE documents SET size = ?, mtime_ns = ? WHERE id = ?",
            [(size, mtime_ns, document_id) for document_id, size, mtime_ns in changes],
        )

    def replace_documents(
        self, documents: Sequence[tuple[DocumentRecord, Sequence[Chunk], Sequence[int]]]
    ) -> tuple[list[int], list[int]]:
        """Write documents, each with its chunks and their vector ids, in place of any earlier
        version of the same path.

        Returns the chunk ids removed and the chunk ids added. Call inside `transaction()`.
        """
        # The last of several records for one path wins, as if written one after another.
        latest = list({record.path: (record, chunks, vector_ids) for record, chunks, vector_ids in documents}.values())
        if not latest:
            return [], []
        old = [state.id for state in self.document_states_at(record.path for record, _, _ in latest).values()]
        removed = self._delete_documents(old) if old else []
        # Ids are given here rather than read back row by row; this transaction is the only
        # writer, so nothing else takes them in between.
        document_id = self._next_id("documents")
        chunk_id = self._next_id("chunks")
        now = _now()
        document_rows, chunk_rows, keyword_rows = [], [], []
        for record, chunks, vector_ids in latest:
            document_rows.append((
                document_id, record.path, record.kind, record.size, record.mtime_ns, record.content_hash, record.reader,
                record.format, record.title,
                json.dumps(record.metadata, ensure_ascii=False) if record.metadata else None,
                len(chunks), now,
            ))
            for ordinal, (chunk, vector_id) in enumerate(zip(chunks, vector_ids)):
                chunk_rows.append((
                    chunk_id, document_id, vector_id, ordinal, chunk.start, chunk.end, chunk.start_line,
                    chunk.end_line, chunk.page, chunk.section, chunk.context, chunk.tokens, chunk.text,
                ))
                keyword_rows.append((chunk_id, keyword_body(chunk.context, chunk.text)))
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

    def _delete_documents(self, document_ids: Sequence[int]) -> list[int]:
        removed: list[int] = []
        for batch in _batches(document_ids):
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                f"SELECT id, vector_id, context, text FROM chunks WHERE document_id IN ({marks})", batch
            ).fetchall()
            self._forget_keywords(rows)
            for chunk_id, vector_id, _, _ in rows:
                removed.append(chunk_id)
                self.released_vectors.add(vector_id)
            self.db.execute(f"DELETE FROM chunks WHERE document_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM documents WHERE id IN ({marks})", batch)
        return removed

    def _forget_keywords(self, rows: Iterable[tuple[int, int, str | None, str]]) -> None:
        """Remove chunks from the keyword index; rows are (id, vector_id, context, text)."""
        self.db.conn.executemany(
            "INSERT INTO chunks_fts (chunks_fts, rowid, body) VALUES ('delete', ?, ?)",
            [(chunk_id, keyword_body(context, text)) for chunk_id, _, context, text in rows],
        )

    def documents_matching(self, paths: Sequence[str]) -> list[DocumentState]:
        """Documents whose path is one of `paths` or lies under one of them."""
        found: dict[int, DocumentState] = {}
        for path in paths:
            prefix = path.rstrip("/") + "/"
            for row in self.db.execute(
                "SELECT id, path, size, mtime_ns, content_hash, reader FROM documents"
                " WHERE path = ? OR substr(path, 1, ?) = ?",
                [path, len(prefix), prefix],
            ):
                found[row[0]] = DocumentState(*row)
        return list(found.values())

    # -- vectors ----------------------------------------------------------------------------

    def vector_ids(self, hashes: Iterable[bytes]) -> dict[bytes, int]:
        """The stored vector id of each hash that has one."""
        found: dict[bytes, int] = {}
        for batch in _batches(list(hashes)):
            marks = ",".join("?" * len(batch))
            for row in self.db.execute(f"SELECT hash, id FROM vectors WHERE hash IN ({marks})", batch):
                found[bytes(row[0])] = row[1]
        return found

    def add_vectors(self, hashes: Sequence[bytes], matrix: np.ndarray, *, replace: bool = False) -> list[int]:
        """Store one vector per hash (float32 little-endian); returns their ids.

        A hash already stored keeps its id; `replace` overwrites its vector. Call inside
        `transaction()`.
        """
        import numpy as np

        rows = [(digest, row.tobytes()) for digest, row in zip(hashes, np.ascontiguousarray(matrix, dtype="<f4"))]
        connection = self.db.conn
        if replace:
            connection.executemany("UPDATE vectors SET vector = ? WHERE hash = ?", [(blob, digest) for digest, blob in rows])
        connection.executemany("INSERT OR IGNORE INTO vectors (hash, vector) VALUES (?, ?)", rows)
        ids = self.vector_ids(digest for digest, _ in rows)
        return [ids[digest] for digest, _ in rows]

    def delete_unused_vectors(self, candidates: Iterable[int] | None = None) -> int:
        """Drop vectors no chunk refers to, among `candidates` or all; returns how many.

        Vectors an interrupted run paid for wait, unused, for their documents; only a run
        over every folder may conclude they will not be needed.
        """
        if candidates is None:
            cursor = self.db.execute("DELETE FROM vectors WHERE id NOT IN (SELECT vector_id FROM chunks)")
            return cursor.rowcount
        deleted = 0
        for batch in _batches(sorted(candidates)):
            marks = ",".join("?" * len(batch))
            cursor = self.db.execute(
                f"DELETE FROM vectors WHERE id IN ({marks}) AND id NOT IN (SELECT vector_id FROM chunks WHERE vector_id IN ({marks}))",
                batch + batch,
            )
            deleted += cursor.rowcount
        return deleted

    # -- reading for search -----------------------------------------------------------------

    def chunk_ids(self) -> np.ndarray:
        import numpy as np

        cursor = self.db.execute("SELECT id FROM chunks ORDER BY id")
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)

    def chunk_vectors(self, dimensions: int, chunk_ids: np.ndarray | None = None, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (chunk ids, float32 matrix) for all chunks, or for `chunk_ids`, in batches."""
        import numpy as np

        def decode(rows: list) -> tuple[np.ndarray, np.ndarray]:
            ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), dimensions)
            return ids, matrix.astype(np.float32, copy=False)

        if chunk_ids is None:
            cursor = self.db.execute(
                "SELECT chunks.id, vectors.vector FROM chunks JOIN vectors ON vectors.id = chunks.vector_id"
                " ORDER BY chunks.id"
            )
            while rows := cursor.fetchmany(batch):
                yield decode(rows)
            return
        for start in range(0, len(chunk_ids), _PARAMETERS):
            part = [int(i) for i in chunk_ids[start : start + _PARAMETERS]]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                "SELECT chunks.id, vectors.vector FROM chunks JOIN vectors ON vectors.id = chunks.vector_id"
                f" WHERE chunks.id IN ({marks})",
                part,
            ).fetchall()
            if rows:
                yield decode(rows)

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The stored facts of each chunk id, with its document's path and title."""
        rows: dict[int, dict[str, Any]] = {}
        for batch in _batches([int(i) for i in chunk_ids]):
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

    # -- verification and repair ------------------------------------------------------------

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
        return [row[0] for row in self.db.execute("SELECT id FROM vectors WHERE length(vector) != ?", [dimensions * 4])]

    def unused_vector_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM vectors WHERE id NOT IN (SELECT vector_id FROM chunks)").fetchone()[0]

    def documents_with_missing_chunks(self) -> list[int]:
        """Documents holding fewer chunks than they were written with."""
        return [row[0] for row in self.db.execute(
            "SELECT documents.id FROM documents LEFT JOIN chunks ON chunks.document_id = documents.id"
            " GROUP BY documents.id HAVING count(chunks.id) != documents.chunk_count"
        )]

    def delete_chunks(self, chunk_ids: Sequence[int]) -> None:
        """Delete chunks by id. Call inside `transaction()`."""
        if not chunk_ids:
            return
        for batch in _batches(list(chunk_ids)):
            marks = ",".join("?" * len(batch))
            self._forget_keywords(self.db.execute(f"SELECT id, vector_id, context, text FROM chunks WHERE id IN ({marks})", batch).fetchall())
            self.db.execute(f"DELETE FROM chunks WHERE id IN ({marks})", batch)
        self._bump_generation()

    def delete_vectors(self, vector_ids: Sequence[int]) -> None:
        """Delete vectors by id, with the chunks using them. Call inside `transaction()`."""
        if not vector_ids:
            return
        for batch in _batches(list(vector_ids)):
            marks = ",".join("?" * len(batch))
            self._forget_keywords(
                self.db.execute(f"SELECT id, vector_id, context, text FROM chunks WHERE vector_id IN ({marks})", batch).fetchall()
            )
            self.db.execute(f"DELETE FROM chunks WHERE vector_id IN ({marks})", batch)
            self.db.execute(f"DELETE FROM vectors WHERE id IN ({marks})", batch)
        self._bump_generation()

    def forget_content(self, document_ids: Sequence[int]) -> None:
        """Make the next `add` read these documents again. Call inside `transaction()`."""
        for batch in _batches(list(document_ids)):
            self.db.execute(
                f"UPDATE documents SET size = NULL, mtime_ns = NULL, content_hash = '' WHERE id IN ({','.join('?' * len(batch))})",
                batch,
            )

    def clear(self) -> None:
        """Delete every document, chunk and vector (folders are kept). Call inside `transaction()`."""
        self.db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")
        self.db.execute("DELETE FROM chunks")
        self.db.execute("DELETE FROM documents")
        self.db.execute("DELETE FROM vectors")
        self._bump_generation()

    # -- keyword search and filters ---------------------------------------------------------

    def document_facts(self) -> Iterator[tuple[int, str, str, int | None]]:
        """(id, path, kind, mtime_ns) of every document, for filtering."""
        yield from self.db.execute("SELECT id, path, kind, mtime_ns FROM documents")

    def chunk_ids_of_documents(self, document_ids: Sequence[int]) -> np.ndarray:
        import numpy as np

        ids: list[int] = []
        for batch in _batches(list(document_ids)):
            marks = ",".join("?" * len(batch))
            ids.extend(row[0] for row in self.db.execute(f"SELECT id FROM chunks WHERE document_id IN ({marks})", batch))
        return np.array(sorted(ids), dtype=np.int64)

    def record_count(self) -> int:
        """How many documents are records from `add_texts` rather than files."""
        return self.db.execute("SELECT count(*) FROM documents WHERE kind = 'text'").fetchone()[0]

    def has_documents(self) -> bool:
        """Whether the index holds any document (one row read)."""
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM documents)").fetchone()[0] == 1

    def has_chunks(self) -> bool:
        """Whether the index holds any chunk (one row read, where counting them is a scan)."""
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM chunks)").fetchone()[0] == 1

    def chunk_count(self) -> int:
        """How many chunks the index holds; counted once per generation, as counting is a scan."""
        generation = self.generation()
        if self._chunk_count is None or self._chunk_count[0] != generation:
            self._chunk_count = (generation, self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])
        return self._chunk_count[1]

    def counts(self) -> dict[str, int]:
        """How many documents, chunks and distinct vectors the index holds."""
        return {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("documents", "chunks", "vectors")
        }


# SQLite's page cache per connection.
PAGE_CACHE_KIB = 32 * 1024


def _batches(values: Sequence, size: int = _PARAMETERS) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection to the database in a folder we cannot write.

    Commits not yet copied into the file itself (after a killed run, or while a writer
    elsewhere has it open) live in its WAL, which SQLite reads when the WAL's index file
    (-shm) exists. Without one, SQLite cannot open the file normally, as it would have to
    create it; with no WAL either, the file is complete and is read as an immutable one.
    """
    uri = path.absolute().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise StorageError(
            f"The index at {path.parent} holds commits that are only in {wal.name}, which cannot be read "
            "in a folder that is not writable. Open it once where it is writable (`semsearch status` "
            "will do) and copy it again, or make the folder writable."
        )
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def storage_error(exc: sqlite3.DatabaseError, path: Path) -> StorageError:
    """A StorageError that says what to do about a SQLite failure."""
    message = str(exc)
    lowered = message.lower()
    if "full" in lowered:
        advice = "the disk is full; free some space and run the command again (nothing committed was lost)"
    elif "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        advice = "the index folder is not writable; check its permissions or choose another with --index"
    elif "locked" in lowered or "busy" in lowered:
        advice = "another process holds the database; try again when it has finished"
    elif "malformed" in lowered or "not a database" in lowered:
        advice = (
            "the database file is damaged, which `check --repair` cannot mend; index your folders again "
            "into a new index (`semsearch --index NEW index FOLDER...`) and replace this one with it"
        )
    else:
        advice = "run `semsearch check` to verify the index"
    return StorageError(f"Index database {path}: {message}: {advice}.")
