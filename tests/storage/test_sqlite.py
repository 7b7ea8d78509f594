"""The store's batch writes: documents replaced by path, ids never reused, keywords in step."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Index
from semsearch.settings import ChunkSettings
from semsearch.storage.base import DocumentRecord
from semsearch.storage.sqlite import keywords as keyword_store
from semsearch.storage.sqlite.migrations import needs_upgrade
from semsearch.storage.sqlite.store import Store
from semsearch.text.chunking import Chunk


def _chunk(text: str) -> Chunk:
    return Chunk(text=text, embed_text=text, start=0, end=len(text), start_line=1, end_line=1, tokens=3)


def _record(path: str) -> DocumentRecord:
    return DocumentRecord(path=path, kind="text", content_hash=path)


def _vectors(rows: int, value: float = 1.0) -> np.ndarray:
    return np.full((rows, 4), value, dtype=np.float32)


def test_documents_are_replaced_by_path_in_one_write(tmp_path):
    store = Store(tmp_path)
    alpha, beta = _chunk("alpha glaciers"), _chunk("beta volcanoes")
    with store.transaction():
        vector_ids = store.add_vectors([alpha.hash, beta.hash], _vectors(2))
        removed, first = store.replace_documents([
            (_record("a"), [alpha], vector_ids[:1]),
            (_record("b"), [alpha, beta], vector_ids),
        ])
    assert removed == [] and first == sorted(first) and len(first) == 3
    with store.transaction():
        # Two records for one path in one write: the last one wins.
        removed, second = store.replace_documents([
            (_record("a"), [beta], vector_ids[1:]),
            (_record("a"), [beta, alpha], [vector_ids[1], vector_ids[0]]),
        ])
    assert removed == first[:1]
    assert len(second) == 2 and min(second) > max(first)
    assert store.counts() == {"documents": 2, "chunks": 4, "vectors": 2}
    rows = store.chunk_rows(second)
    assert [(rows[i]["path"], rows[i]["ordinal"], rows[i]["text"]) for i in second] == [
        ("a", 0, "beta volcanoes"), ("a", 1, "alpha glaciers"),
    ]
    assert store.keyword_ids().tolist() == store.chunk_ids().tolist() == first[1:] + second
    found, _ = store.keyword_search(["glaciers"], 10)
    assert sorted(chunk_id for chunk_id, _ in found) == [first[1], second[1]]
    assert store.keyword_problems() == [] and store.documents_with_missing_chunks() == []
    store.close()


def test_vectors_keep_their_ids_and_are_replaced_on_request(tmp_path):
    store = Store(tmp_path)
    one, two, three = b"1" * 16, b"2" * 16, b"3" * 16
    with store.transaction():
        ids = store.add_vectors([one, two], _vectors(2))
        again = store.add_vectors([two, three, two], _vectors(3, 2.0))
    assert again[0] == again[2] == ids[1] and again[1] not in ids
    assert store.vector_ids([one, two, three]) == {one: ids[0], two: ids[1], three: again[1]}
    stored = dict(store.db.execute("SELECT id, vector FROM vectors").fetchall())
    assert np.frombuffer(stored[ids[1]], dtype="<f4").tolist() == [1.0] * 4, "kept, not replaced"
    with store.transaction():
        assert store.add_vectors([two], _vectors(1, 3.0), replace=True) == [ids[1]]
    stored = dict(store.db.execute("SELECT id, vector FROM vectors").fetchall())
    assert np.frombuffer(stored[ids[1]], dtype="<f4").tolist() == [3.0] * 4
    store.close()


def test_chunk_ids_are_never_reused(tmp_path, fake):
    # A chunk id is its FAISS id: one given again could meet a stale copy in a cache.
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["a", "b"], ["Kittens drink milk.", "Rockets fly to orbit."])
        highest = int(index._backend.store.chunk_ids().max())
        index.remove(["b"])
        index.add_texts(["c"], ["Glaciers carve valleys."])
        assert int(index._backend.store.chunk_ids().max()) > highest
        assert index.search("glaciers valleys", limit=1)[0].path == "c"
        assert index.check().problems == []


def _keywords_as_before(directory, tokenizer: str, *unapplied: str) -> Store:
    """The keyword index as an earlier version left it: built with `tokenizer`, and the
    migrations named not applied yet."""
    store = Store(directory)
    with store.transaction():
        store.db.executescript(
            f"""
            DROP TABLE chunks_fts_terms; DROP TABLE chunks_fts;
            CREATE VIRTUAL TABLE chunks_fts USING fts5(body, content='', tokenize='{tokenizer}');
            CREATE VIRTUAL TABLE chunks_fts_terms USING fts5vocab(chunks_fts, 'row');
            """
        )
        store.db.execute(f"DELETE FROM _sqlite_migrations WHERE name IN ({','.join('?' * len(unapplied))})", unapplied)
        store.rebuild_keywords()
    return store


def test_an_index_with_unstemmed_keywords_is_rebuilt_stemmed_on_open(tmp_path, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["r1", "r2"], ["The river runs fast in spring.", "Glaciers melt slowly."])
    # As an earlier version left it: m002's unstemmed keyword index, m005 not applied.
    store = _keywords_as_before(tmp_path / "ix", "unicode61 remove_diacritics 2", "m005_stemmed_keywords", "m006_marks_inside_words")
    assert store.keyword_search(["running"], 10)[0] == []  # "run" is not among "runs"
    store.close()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert [hit.path for hit in index.search("running", mode="keyword")] == ["r1"]
        assert index.check().ok


@pytest.mark.parametrize("reader_column", [False, True], ids=["first release", "with reader versions"])
def test_an_index_from_the_first_releases_opens_and_is_brought_up_to_date(tmp_path, fake, reader_column):
    texts = ["The river runs fast in spring.", "Glaciers melt slowly."]
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["r1", "r2"], texts, [{"title": "Rivers"}, None])
    # As the first releases left it: m001 alone, whose chunks had no context column, nor
    # (at first) its documents a reader version, and a chunker version among the settings.
    store = Store(tmp_path / "ix")
    with store.transaction():
        store.db.executescript(
            """
            DROP TABLE chunks_fts_terms; DROP TABLE chunks_fts; DROP TABLE skipped_files; DROP TABLE chunk_parts; DROP TABLE backlog;
            ALTER TABLE roots DROP COLUMN patterns;
            ALTER TABLE chunks DROP COLUMN context;
            DELETE FROM _sqlite_migrations WHERE name != 'm001_initial';
            """
        )
        if reader_column:
            store.db.execute("UPDATE documents SET reader = 1")  # an earlier reader's
        else:
            store.db.execute("ALTER TABLE documents DROP COLUMN reader")
        store.set_meta({"chunking": json.dumps({**ChunkSettings().to_dict(), "version": 1})})
    assert needs_upgrade(store.db)  # so a read-only copy says it needs one, instead of failing later
    store.close()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert index.chunking == ChunkSettings()
        assert [hit.path for hit in index.search("glaciers", mode="keyword")] == ["r2"]
        assert index.search("river spring", mode="dense", limit=1)[0].path == "r1"
        # Read again with today's reader; their vectors are still good.
        stats = index.add_texts(["r1", "r2"], texts, [{"title": "Rivers"}, None])
        assert (stats.changed, stats.unchanged, stats.chunks_embedded) == (2, 0, 0)
        assert index.check().ok
    with Index.open(tmp_path / "ix", embedder=fake, chunking=ChunkSettings()) as index:
        assert index.add_texts(["r1", "r2"], texts, [{"title": "Rivers"}, None]).unchanged == 2
        assert not needs_upgrade(index._backend.store.db)  # a read-only copy opens


def test_an_index_that_cut_words_at_combining_marks_is_rebuilt_on_open(tmp_path, fake, monkeypatch):
    # "Large" is shrunk, so the rebuilt index records its common words' counts at once.
    monkeypatch.setattr(keyword_store, "PRUNE_ABOVE", 1)
    monkeypatch.setattr(keyword_store, "COMMON_TERM_CHUNKS", 1)
    texts = ["नई दिल्ली भारत की राजधानी है", "मेरा दिल खुश है"]  # Delhi; my heart
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["delhi", "heart"], texts)
    # As m005 left it: marks were separators, so "दिल्ली" was indexed as "द", "ल", "ल".
    store = _keywords_as_before(tmp_path / "ix", "porter unicode61 remove_diacritics 2", "m006_marks_inside_words")
    assert {"द", "ल"} <= {term for (term,) in store.db.execute("SELECT term FROM chunks_fts_terms")}
    store.close()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert [hit.path for hit in index.search("दिल्ली", mode="keyword")] == ["delhi"]
        assert [hit.path for hit in index.search("दिल", mode="keyword")] == ["heart"]
        sql = index._backend.store.db.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()[0]
        assert keyword_store.KEYWORD_TOKENIZER in sql, "the index is cut into words as queries are"
        assert json.loads(index._backend.store.meta()["common_terms"]) == {"chunks": 2, "terms": {"है": 2}}
        assert index.check().ok


def test_an_index_without_common_word_counts_records_them_on_its_next_run(tmp_path, fake, monkeypatch):
    # Counts of common words spare a keyword search on a large index reading their posting
    # lists; an index upgraded through m005 has none. The next indexing run records them,
    # even one that changes nothing. "Large" is shrunk for the test.
    monkeypatch.setattr(keyword_store, "PRUNE_ABOVE", 2)
    monkeypatch.setattr(keyword_store, "COMMON_TERM_CHUNKS", 1)
    texts = ["Rivers run to the sea.", "The sea is salt.", "Glaciers melt."]
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["a", "b", "c"], texts)
    store = Store(tmp_path / "ix")
    with store.transaction():
        store.db.execute("DELETE FROM meta WHERE key = 'common_terms'")
    store.close()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert [hit.path for hit in index.search("salt sea", mode="keyword")][0] == "b"
        assert "common_terms" not in index._backend.store.meta()  # searches only read
        stats = index.add_texts(["a", "b", "c"], texts)
        assert stats.unchanged == 3
        recorded = json.loads(index._backend.store.meta()["common_terms"])
    assert recorded == {"chunks": 3, "terms": {"sea": 2, "the": 2}}


def test_idf_stays_defined_when_a_writer_commits_between_the_counts():
    # chunk_count() and a word's count are read one after the other; in between a writer
    # may add chunks holding the word, so it can appear in more chunks than were counted.
    assert keyword_store._idf(50, 70) == 1e-6
    assert keyword_store._idf(50, 1) > keyword_store._idf(50, 10) > 1e-6
