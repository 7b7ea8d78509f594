"""What keeps a PostgreSQL index fast to fill and to search: a run into a near-empty index
builds the HNSW index once at its end, and keyword search takes common words' counts from
the statistics ANALYZE records."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from semsearch import Index
from semsearch.storage.postgres import chunks as chunk_queries
from semsearch.storage.postgres import keywords
from tests.conftest import FakeEmbedder


def has_vector_index(url: str) -> bool:
    with psycopg.connect(url) as connection:
        return bool(connection.execute("SELECT to_regclass('vectors_hnsw') IS NOT NULL").fetchone()[0])


class Watching(FakeEmbedder):
    """Notes, at each batch it embeds, whether the database holds the HNSW index then."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.seen: list[bool] = []

    def embed_documents(self, texts):
        self.seen.append(has_vector_index(self.url))
        return super().embed_documents(texts)


def texts(count: int, start: int = 0) -> list[str]:
    return [f"report {n} on the orchid greenhouse, shelf {n % 7}, watered on day {n % 13}" for n in range(start, start + count)]


def test_a_run_into_a_small_index_loads_without_the_vector_index_and_builds_it_at_its_end(postgres_url):
    embedder = Watching(postgres_url)
    with Index.open(postgres_url, embedder=embedder) as index:
        index.add_texts([f"r{n}" for n in range(40)], texts(40))
        assert embedder.seen and not any(embedder.seen)
        assert has_vector_index(postgres_url)
        assert index.check().problems == [] and index.check().notes == []
        assert index.search("orchid shelf 3", mode="dense", limit=1)


def test_a_run_into_a_large_index_keeps_its_vector_index(postgres_url, monkeypatch):
    monkeypatch.setattr(chunk_queries, "BUILD_AFTER_BELOW", 20)
    embedder = Watching(postgres_url)
    with Index.open(postgres_url, embedder=embedder) as index:
        index.add_texts([f"r{n}" for n in range(30)], texts(30))
        embedder.seen.clear()
        index.add_texts([f"s{n}" for n in range(10)], texts(10, 30))
        assert embedder.seen and all(embedder.seen)
        assert index.status().chunks == 40


def test_a_run_stopped_before_its_end_leaves_the_index_searchable_and_the_next_builds_it(postgres_url, monkeypatch):
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        expected = None
        original = chunk_queries.ChunkQueries.build_deferred_index

        def interrupted(self):
            raise KeyboardInterrupt

        monkeypatch.setattr(chunk_queries.ChunkQueries, "build_deferred_index", interrupted)
        with pytest.raises(KeyboardInterrupt):
            index.add_texts([f"r{n}" for n in range(20)], texts(20))
        assert not has_vector_index(postgres_url)
        report = index.check()
        assert report.problems == [] and any("not built yet" in note for note in report.notes)
        # Exact search meanwhile: every committed chunk is found.
        expected = [result.chunk_id for result in index.search("orchid shelf 3 day 5", mode="dense", limit=20)]
        assert len(expected) == 20
        monkeypatch.setattr(chunk_queries.ChunkQueries, "build_deferred_index", original)
        index.add_texts(["s0"], texts(1, 20))
        assert has_vector_index(postgres_url) and index.check().notes == []
        found = [result.chunk_id for result in index.search("orchid shelf 3 day 5", mode="dense", limit=21)]
        assert set(expected) < set(found)


def test_a_large_index_without_its_vector_index_is_a_problem_check_repairs(postgres_url, monkeypatch):
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(20)], texts(20))
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute("DROP INDEX vectors_hnsw")
        monkeypatch.setattr(chunk_queries, "BUILD_AFTER_BELOW", 10)
        from semsearch.storage.postgres import check

        monkeypatch.setattr(check, "BUILD_AFTER_BELOW", 10)
        assert any("HNSW index is missing" in problem for problem in index.check().problems)
        assert index.check(repair=True).repaired
        assert has_vector_index(postgres_url) and index.check().problems == []


def test_keyword_counts_come_from_analyze_statistics_and_rank_as_exact_counts_do(postgres_url, monkeypatch):
    # 60 chunks: "orchid" in all, "shelf" words in a seventh, "zeppelin" in one.
    corpus = texts(60)
    corpus[11] += " and a zeppelin"
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(60)], corpus)
        store = index._backend.store.current()  # this thread's connection, to watch it
        query = ["zeppelin", "watered", "day", "11"]
        exact = store.keyword_search(query, 10)
        monkeypatch.setattr(keywords, "SAMPLE_ROWS", 10)  # counts as a large table now
        store._frequency_cache = (-1, {})
        store.execute("ANALYZE chunks")
        shares = store._common_shares(60)
        assert shares["orchid"] == pytest.approx(1.0) and shares["water"] == pytest.approx(1.0)
        # On a large table a word in one chunk is not among the commonest: counted exactly.
        shares.pop("zeppelin", None)
        counted = []
        original = store.rows

        def rows(sql, parameters=None):
            counted.append(sql)
            return original(sql, parameters)

        monkeypatch.setattr(store, "rows", rows)
        estimated = store.keyword_search(query, 10)
        # The rare word is counted exactly; nothing samples the table.
        assert not any("TABLESAMPLE" in sql for sql in counted)
        assert sum("count(*) FILTER" in sql for sql in counted) == 1 and store._frequency_cache[1]["zeppelin"] == 1
        assert [chunk_id for chunk_id, _ in estimated[0]] == [chunk_id for chunk_id, _ in exact[0]]
        assert [score for _, score in estimated[0]] == pytest.approx([score for _, score in exact[0]], rel=0.05)
        assert estimated[1] == pytest.approx(exact[1], rel=0.05)


def test_keyword_counts_before_any_analyze_come_from_a_sample(postgres_url, monkeypatch):
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(30)], texts(30))
        store = index._backend.store.current()  # this thread's connection, to watch it
        monkeypatch.setattr(keywords, "SAMPLE_ROWS", 10)
        monkeypatch.setattr(store, "_common_shares", lambda chunks: {})
        store._frequency_cache = (-1, {})
        found, ceiling = store.keyword_search(["greenhouse", "shelf", "3"], 5)
        assert len(found) == 5 and ceiling > 0


def test_an_index_made_before_the_tuning_is_rebuilt_with_it_when_opened(postgres_url):
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(20)], texts(20))
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP INDEX vectors_hnsw")
        connection.execute("CREATE INDEX vectors_hnsw ON vectors USING hnsw ((embedding::halfvec(64)) halfvec_cosine_ops)")
        connection.execute("ALTER TABLE chunks ALTER COLUMN keywords SET STATISTICS -1")
        connection.execute("DELETE FROM semsearch_migrations WHERE name = 'm005_search_tuning'")
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        assert len(index.search("orchid shelf 3", mode="dense", limit=5)) == 5
    with psycopg.connect(postgres_url) as connection:
        options = connection.execute("SELECT reloptions FROM pg_class WHERE relname = 'vectors_hnsw'").fetchone()[0]
        target = connection.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'keywords'"
        ).fetchone()[0]
    assert options == ["m=16", "ef_construction=128"] and target == 3000


def test_an_indexing_role_that_does_not_own_the_tables_indexes_with_the_vector_index_kept(postgres_url):
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts(["r0"], texts(1))
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DO $$ BEGIN CREATE ROLE writer LOGIN PASSWORD 'write-pw-2718'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        connection.execute(f"GRANT CONNECT ON DATABASE {database} TO writer")
        connection.execute("GRANT USAGE ON SCHEMA public TO writer")
        connection.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO writer")
        connection.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO writer")
    writer = postgres_url.replace("postgres:s3cret-pw-4471@", "writer:write-pw-2718@")
    with Index.open(writer, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(1, 20)], texts(19, 1))
        assert index.status().chunks == 20 and has_vector_index(postgres_url)


@pytest.mark.parametrize("how", ["walk filtered here", "walk again, longer", "filter in SQL"])
def test_a_filtered_search_through_the_vector_index_finds_what_exact_search_finds(postgres_url, monkeypatch, how):
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(120)], texts(120))
        store = index._backend.store.current()
        assert store.has_vector_index()
        everything = store.dense(FakeEmbedder().embed_query("orchid shelf 3 day 5"), 200, None)[0]
        assert len(everything) == 120
        query = FakeEmbedder().embed_query("orchid shelf 3 day 5")
        # The chunks furthest from the query, so that an unfiltered walk meets them last.
        shares = {"a third": sorted(everything[-40:]), "a tenth": sorted(everything[-12:])}
        monkeypatch.setattr(chunk_queries, "EXACT_BELOW", 10**9)
        exact = {share: store.dense(query, 5, np.array(ids)) for share, ids in shares.items()}
        monkeypatch.setattr(chunk_queries, "EXACT_BELOW", 0)
        if how == "walk again, longer":
            monkeypatch.setattr(chunk_queries, "FILTER_MARGIN", 0.05)
        if how == "filter in SQL":
            monkeypatch.setattr(chunk_queries, "POST_FILTER_MOST", 1)
        walks = []
        original = chunk_queries.ChunkQueries._walk

        def walk(self, query, dimensions, limit, admitted):
            walks.append((limit, admitted is not None))
            return original(self, query, dimensions, limit, admitted)

        monkeypatch.setattr(chunk_queries.ChunkQueries, "_walk", walk)
        for share, ids in shares.items():
            walks.clear()
            found = store.dense(query, 5, np.array(ids))
            assert found[0] == exact[share][0] and found[1] == pytest.approx(exact[share][1]), (share, walks)
            assert walks and all(filtered == (how == "filter in SQL") for _, filtered in walks)
            assert (len(walks) > 1) == (how == "walk again, longer"), walks


def test_membership_in_a_sorted_array():
    ordered = np.array([2, 5, 9], dtype=np.int64)
    assert chunk_queries._members(ordered, [1, 2, 3, 9, 10]).tolist() == [False, True, False, True, False]
    assert chunk_queries._sorted(np.array([9, 2, 5])).tolist() == [2, 5, 9]


def test_an_index_built_with_other_graph_options_is_a_note_and_repair_builds_it_again(postgres_url):
    from semsearch.storage.postgres import migrations

    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts([f"r{n}" for n in range(30)], texts(30))
        store = index._backend.store.current()
        assert store.vector_index_options() == {"m": migrations.HNSW_M, "ef_construction": migrations.HNSW_EF_CONSTRUCTION}
        assert index.check().notes == []
        before = [h.chunk_id for h in index.search("orchid shelf 3", mode="dense", limit=5)]
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute("DROP INDEX vectors_hnsw")
            connection.execute("CREATE INDEX vectors_hnsw ON vectors USING hnsw ((embedding::halfvec(64)) halfvec_cosine_ops)")
            # What a rebuild stopped halfway leaves.
            connection.execute("CREATE INDEX vectors_hnsw_new ON vectors USING hnsw ((embedding::halfvec(64)) halfvec_cosine_ops)")
        assert store.vector_index_options() == {"m": 16, "ef_construction": 64}
        report = index.check()
        old = (16, 64) != (migrations.HNSW_M, migrations.HNSW_EF_CONSTRUCTION)
        assert report.problems == [] and any("built with m 16, ef_construction 64" in note for note in report.notes) == old
        repaired = index.check(repair=True)
        assert any("built again" in line for line in repaired.repaired) == old
        assert store.vector_index_options() == {"m": migrations.HNSW_M, "ef_construction": migrations.HNSW_EF_CONSTRUCTION}
        assert index.check().notes == []
        with psycopg.connect(postgres_url) as connection:
            names = [row[0] for row in connection.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'vectors'")]
        assert "vectors_hnsw" in names and ("vectors_hnsw_new" not in names) == old
        assert [h.chunk_id for h in index.search("orchid shelf 3", mode="dense", limit=5)] == before


def test_a_long_chunk_keeps_its_keyword_entry_in_the_row_and_its_text_goes_out_of_line(postgres_url):
    # Chunks of about 2 KB of text and as much keyword entry: too long for a row, so one of
    # them moves out of line; keyword search reads the entry of every chunk it meets, the text
    # only when it is shown.
    import hashlib

    # Words that do not compress, as a page of real text barely does once cut into lexemes.
    words = [hashlib.sha1(str(n).encode()).hexdigest()[:14] for n in range(600)]
    with Index.open(postgres_url, embedder=FakeEmbedder()) as index:
        index.add_texts(["long"], [" ".join(words)])
        hits = index.search(words[17], mode="keyword")
        assert hits and words[17] in hits[0].text
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT pg_column_toast_chunk_id(keywords) IS NOT NULL, pg_column_toast_chunk_id(text) IS NOT NULL,"
            " octet_length(text) FROM chunks"
        ).fetchall()
    long_rows = [row for row in rows if row[2] > 1000]
    assert long_rows and not any(keywords_out for keywords_out, _, _ in long_rows) and all(text_out for _, text_out, _ in long_rows)
