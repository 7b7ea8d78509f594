"""The index database's schema, as append-only migrations (sqlite-utils' Migrations).

A migration once released is never edited: an index written by any earlier version is
brought forward by applying the ones it has not seen, in order. One exception predates
that rule: the first releases' m001 lacked two columns it gained later, which `upgrade`
adds to the indexes those releases made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def migrations():
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("semsearch")

    @migrations()
    def m001_initial(db: sqlite_utils.Database) -> None:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE roots (path TEXT PRIMARY KEY, added_at TEXT NOT NULL);
            CREATE TABLE documents (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                path TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                size INTEGER,
                mtime_ns INTEGER,
                content_hash TEXT NOT NULL,
                reader INTEGER NOT NULL DEFAULT 0,
                format TEXT,
                title TEXT,
                metadata TEXT,
                chunk_count INTEGER NOT NULL DEFAULT 0,
                indexed_at TEXT NOT NULL
            );
            CREATE TABLE vectors (
                id INTEGER PRIMARY KEY,
                hash BLOB NOT NULL UNIQUE,
                vector BLOB NOT NULL
            );
            -- AUTOINCREMENT: a chunk id is never reused, so it can be the FAISS id and
            -- a cache can be brought up to date by comparing id sets.
            CREATE TABLE chunks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                document_id INTEGER NOT NULL REFERENCES documents(id),
                vector_id INTEGER NOT NULL REFERENCES vectors(id),
                ordinal INTEGER NOT NULL,
                start_char INTEGER NOT NULL,
                end_char INTEGER NOT NULL,
                start_line INTEGER NOT NULL,
                end_line INTEGER NOT NULL,
                page INTEGER,
                section TEXT,
                context TEXT,
                tokens INTEGER NOT NULL,
                text TEXT NOT NULL
            );
            CREATE INDEX chunks_document ON chunks(document_id);
            CREATE INDEX chunks_vector ON chunks(vector_id);
            INSERT INTO meta (key, value) VALUES ('generation', '0');
            """
        )

    @migrations()
    def m002_keyword_index(db: sqlite_utils.Database) -> None:
        # Contentless: the chunk text is stored once, in `chunks`; deleting from the index
        # repeats the indexed text, which `keyword_text` recomputes from the chunk.
        _keyword_index(db, "unicode61 remove_diacritics 2")

    @migrations()
    def m003_skipped_files(db: sqlite_utils.Database) -> None:
        # The files the last run over each folder could not index, and why. `size`,
        # `mtime_ns` and `reader` are set when the reason came from reading the file, so an
        # unchanged file is not read again only to be refused again.
        db.executescript(
            """
            CREATE TABLE skipped_files (
                path TEXT PRIMARY KEY,
                reason TEXT NOT NULL,
                size INTEGER,
                mtime_ns INTEGER,
                reader INTEGER,
                seen_at TEXT NOT NULL
            );
            """
        )

    @migrations()
    def m004_root_patterns(db: sqlite_utils.Database) -> None:
        # The --include/--exclude patterns a folder was indexed with, as JSON, so that
        # updating it later applies the same rules.
        db.execute("ALTER TABLE roots ADD COLUMN patterns TEXT")

    @migrations()
    def m005_stemmed_keywords(db: sqlite_utils.Database) -> None:
        # Queries are analysed with English stemming; an index built by m002 holds its words
        # unstemmed, so "running" would never find "runs". Built again with the tokenizer the
        # queries used then; common words are counted afresh.
        _rebuild_keyword_index(db, "porter unicode61 remove_diacritics 2")

    @migrations()
    def m006_marks_inside_words(db: sqlite_utils.Database) -> None:
        # unicode61 cut words at combining marks (a Devanagari vowel sign, an Arabic vowel
        # point), so a Hindi word was indexed as fragments that match other words. Built
        # again with marks kept inside words, as queries are now cut. A large index gets its
        # common words' counts again at once: without them every keyword search counts its
        # common words itself until the next indexing run.
        from .keywords import PRUNE_ABOVE, common_terms

        _rebuild_keyword_index(db, "porter unicode61 remove_diacritics 2 categories 'L* N* Co M*'")
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        if chunks > PRUNE_ABOVE:
            db.execute("INSERT INTO meta (key, value) VALUES ('common_terms', ?)", [common_terms(db, chunks)])

    @migrations()
    def m007_chunk_parts(db: sqlite_utils.Database) -> None:
        # The sections of a chunk that holds several, each with a vector of its own, so a
        # search can tell which of them answers (its label and snippet come from there).
        db.executescript(
            """
            CREATE TABLE chunk_parts (
                chunk_id INTEGER NOT NULL REFERENCES chunks(id),
                ordinal INTEGER NOT NULL,
                start_char INTEGER NOT NULL,
                end_char INTEGER NOT NULL,
                section TEXT,
                vector_id INTEGER NOT NULL REFERENCES vectors(id),
                PRIMARY KEY (chunk_id, ordinal)
            );
            CREATE INDEX chunk_parts_vector ON chunk_parts(vector_id);
            """
        )

    @migrations()
    def m008_backlog(db: sqlite_utils.Database) -> None:
        # Texts read and chunked but not embedded yet. Their chunks are written at once (and
        # found by keywords); their `vectors` row holds an empty blob until the vector comes,
        # and the text to embed waits here, the most recently modified document's first.
        db.executescript(
            """
            CREATE TABLE backlog (
                vector_id INTEGER PRIMARY KEY REFERENCES vectors(id),
                text TEXT NOT NULL,
                priority INTEGER NOT NULL
            );
            CREATE INDEX backlog_priority ON backlog(priority DESC, vector_id);
            """
        )

    return migrations


# Columns m001 gained after the first releases had made indexes with it, before m002:
# documents.reader (the reader version that wrote a document; 0 has the next run read every
# document again) and chunks.context (the title and section path a chunk was embedded with,
# which m002 reads).
_M001_LATE_COLUMNS = (
    ("documents", "reader", "INTEGER NOT NULL DEFAULT 0"),
    ("chunks", "context", "TEXT"),
)


def needs_upgrade(db: sqlite_utils.Database) -> bool:
    """Whether `upgrade` has anything to do."""
    return bool(_missing_late_columns(db) or migrations().pending(db))


def upgrade(db: sqlite_utils.Database) -> None:
    """Bring the index database to the current schema."""
    for table, column, definition in _missing_late_columns(db):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    schema = migrations()
    if schema.pending(db):
        schema.apply(db)


def _missing_late_columns(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    # Not yet created (a new index) is not missing: m001 creates them whole.
    return [
        (table, column, definition)
        for table, column, definition in _M001_LATE_COLUMNS
        if db[table].exists() and column not in db[table].columns_dict
    ]


def _rebuild_keyword_index(db: sqlite_utils.Database, tokenizer: str) -> None:
    db.executescript("DROP TABLE chunks_fts_terms; DROP TABLE chunks_fts;")
    db.execute("DELETE FROM meta WHERE key = 'common_terms'")
    _keyword_index(db, tokenizer)


def _keyword_index(db: sqlite_utils.Database, tokenizer: str) -> None:
    """The contentless FTS5 table of the chunk texts, filled from `chunks`, and its vocabulary."""
    from .keywords import keyword_body

    db.executescript(
        f"""
        CREATE VIRTUAL TABLE chunks_fts USING fts5(body, content='', tokenize="{tokenizer}");
        CREATE VIRTUAL TABLE chunks_fts_terms USING fts5vocab(chunks_fts, 'row');
        """
    )
    rows = db.execute("SELECT id, context, text FROM chunks").fetchall()
    db.conn.executemany(
        "INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", [(i, keyword_body(context, text)) for i, context, text in rows]
    )
    # Filled in one go, the index is left in many segments that every query reads; merged
    # into one, keyword searches read far fewer pages (benchmarks/README.md, "Query
    # latency"). The content is the same either way.
    db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
