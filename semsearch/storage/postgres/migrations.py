"""The PostgreSQL schema of an index, as append-only migrations: one released is never
edited; a database made by an earlier version gets the ones it has not seen, in order, in
one transaction under an advisory lock, so processes opening it at once take turns.

The vectors' HNSW index is made once their size is known (the first vectors set it; see
`vector_index_sql`), as pgvector indexes only columns of a fixed size.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_initial",
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        -- Keyword search: English stemming without a stop list, as the local index's FTS5
        -- tokenizer does; accents are folded and CJK runs cut into bigrams before (keywords.py).
        CREATE TEXT SEARCH DICTIONARY semsearch_stem (TEMPLATE = snowball, Language = english);
        CREATE TEXT SEARCH CONFIGURATION semsearch (PARSER = default);
        ALTER TEXT SEARCH CONFIGURATION semsearch ADD MAPPING FOR
            asciiword, word, numword, asciihword, hword, numhword, hword_asciipart, hword_part, hword_numpart
            WITH semsearch_stem;
        ALTER TEXT SEARCH CONFIGURATION semsearch ADD MAPPING FOR int, uint, float, sfloat, version WITH simple;
        CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE roots (path text PRIMARY KEY, added_at timestamptz NOT NULL DEFAULT now(), settings text);
        CREATE TABLE documents (
            id bigserial PRIMARY KEY,
            path text NOT NULL UNIQUE,
            kind text NOT NULL,
            size bigint,
            mtime_ns bigint,
            content_hash text NOT NULL,
            reader integer NOT NULL DEFAULT 0,
            format text,
            title text,
            metadata text,
            chunk_count integer NOT NULL DEFAULT 0,
            indexed_at timestamptz NOT NULL DEFAULT now()
        );
        -- One vector per distinct embedded text, as float32: exact, and what a copy moves.
        CREATE TABLE vectors (
            id bigserial PRIMARY KEY,
            hash bytea NOT NULL UNIQUE,
            embedding vector NOT NULL
        );
        CREATE TABLE chunks (
            id bigserial PRIMARY KEY,
            document_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            vector_id bigint NOT NULL REFERENCES vectors(id),
            ordinal integer NOT NULL,
            start_char integer NOT NULL,
            end_char integer NOT NULL,
            start_line integer NOT NULL,
            end_line integer NOT NULL,
            page integer,
            section text,
            context text,
            tokens integer NOT NULL,
            text text NOT NULL,
            keywords tsvector NOT NULL,
            keyword_length integer NOT NULL
        );
        CREATE INDEX documents_path_prefix ON documents (path text_pattern_ops);
        CREATE INDEX chunks_document ON chunks (document_id);
        CREATE INDEX chunks_vector ON chunks (vector_id);
        CREATE INDEX chunks_keywords ON chunks USING gin (keywords);
        CREATE TABLE chunk_parts (
            chunk_id bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
            ordinal integer NOT NULL,
            start_char integer NOT NULL,
            end_char integer NOT NULL,
            section text,
            vector_id bigint NOT NULL REFERENCES vectors(id),
            PRIMARY KEY (chunk_id, ordinal)
        );
        CREATE INDEX chunk_parts_vector ON chunk_parts (vector_id);
        CREATE TABLE skipped_files (
            path text PRIMARY KEY,
            reason text NOT NULL,
            size bigint,
            mtime_ns bigint,
            reader integer,
            seen_at timestamptz NOT NULL DEFAULT now()
        );
        -- BM25's corpus figures, kept by every commit (commits take turns: COMMIT_LOCK).
        CREATE TABLE keyword_totals (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            chunks bigint NOT NULL,
            tokens bigint NOT NULL
        );
        INSERT INTO keyword_totals VALUES (true, 0, 0);
        """,
    ),
    (
        "m002_root_places",
        """
        -- Where each indexed folder (by its name, the first part of its documents' paths)
        -- is on each machine, so every machine shows its own absolute paths.
        CREATE TABLE root_places (
            root text NOT NULL,
            host text NOT NULL,
            path text NOT NULL,
            seen_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (root, host)
        );
        """,
    ),
    (
        "m003_rate_limits",
        """
        -- Token buckets shared by every indexer of the index (one per service contract);
        -- `updated_at` lies ahead while the service has asked everyone to wait.
        CREATE TABLE rate_buckets (
            name text PRIMARY KEY,
            tokens double precision NOT NULL,
            updated_at double precision NOT NULL
        );
        """,
    ),
    (
        "m004_backlog",
        """
        -- Texts read and chunked but not embedded yet: their chunks are written at once (and
        -- found by keywords), their vector row has no embedding until it comes, and the text
        -- waits here, the most recently modified document's first.
        ALTER TABLE vectors ALTER COLUMN embedding DROP NOT NULL;
        CREATE TABLE backlog (
            vector_id bigint PRIMARY KEY REFERENCES vectors(id) ON DELETE CASCADE,
            text text NOT NULL,
            priority bigint NOT NULL
        );
        CREATE INDEX backlog_priority ON backlog (priority DESC, vector_id);
        """,
    ),
    (
        "m005_search_tuning",
        """
        -- ANALYZE records the shares of the 30,000 or so commonest words of the keyword
        -- index (ten times the target), from which keyword search takes their IDF; a word
        -- not among them is rare, and cheap to count exactly (keywords.py).
        ALTER TABLE chunks ALTER COLUMN keywords SET STATISTICS 3000;
        ANALYZE chunks;
        -- The HNSW index rebuilt with a longer candidate list while linking (HNSW_OPTIONS),
        -- for a graph that search walks to higher recall.
        DO $$
        DECLARE dimensions integer;
        BEGIN
            SELECT value::integer INTO dimensions FROM meta WHERE key = 'dimensions';
            IF dimensions IS NOT NULL AND to_regclass('vectors_hnsw') IS NOT NULL THEN
                DROP INDEX vectors_hnsw;
                EXECUTE format('CREATE INDEX vectors_hnsw ON vectors USING hnsw ((embedding::halfvec(%s)) halfvec_cosine_ops)'
                    ' WITH (m = 16, ef_construction = 128)', dimensions);
            END IF;
        END $$;
        """,
    ),
    (
        "m006_keywords_in_the_row",
        """
        -- Every keyword search reads the keyword entry of each chunk it meets; a chunk's text
        -- is read only when it is shown. So when a row is too long for a page, its text goes
        -- out of line (TOAST) rather than its keyword entry, which then costs one page read
        -- instead of three or four (a third off the keyword query; benchmarks/README.md). Rows
        -- written before keep their layout until they are written again.
        ALTER TABLE chunks ALTER COLUMN keywords SET STORAGE MAIN;
        """,
    ),
]

TABLE = "semsearch_migrations"


# The HNSW graph's build: HNSW_M neighbours a node, a candidate list of HNSW_EF_CONSTRUCTION
# while linking it in. On a million synthetic chunks (benchmarks/README.md), the walk at
# ef_search 1000 (pgvector's longest) reached dense recall@10 0.846 in a graph built with 16 and
# 128, 0.922 with 32 and 200, and 0.968 with 48 and 256, whose build took 32 minutes on 2 cores
# against about 18 for 32 and 200, and whose walk costs a few milliseconds more. At 100k, 16
# and 128 already reached 1.0, where pgvector's default (16, 64) reached 0.95 to 0.98.
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 256
HNSW_OPTIONS = f"m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}"
# What pgvector builds with when an index names no options.
PGVECTOR_DEFAULTS = {"m": 16, "ef_construction": 64}


def vector_index_sql(dimensions: int, *, name: str = "vectors_hnsw", concurrently: bool = False) -> str:
    """The HNSW index of the vectors, as half-precision (half the memory; the order it gives
    is re-scored exactly, see benchmarks/README.md for its recall)."""
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {name} ON vectors USING hnsw ((embedding::halfvec({int(dimensions)})) halfvec_cosine_ops)"
        f" WITH ({HNSW_OPTIONS})"
    )
