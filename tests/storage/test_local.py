"""The local backend's files: the FAISS cache rebuilt from SQLite, vectors stored as blobs,
commits grouped into transactions, the default index location."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from semsearch import Index


def test_index_location_from_environment(tmp_path, fake):
    with Index.open(embedder=fake) as index:
        assert index.path == tmp_path / "index"


def test_faiss_file_is_rebuilt_from_sqlite(tmp_path, docs, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([docs])
        before = [(h.chunk_id, round(h.score, 5)) for h in index.search("cats", limit=5, per_file=0)]
    (tmp_path / "ix" / "vectors.faiss").unlink()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        after = [(h.chunk_id, round(h.score, 5)) for h in index.search("cats", limit=5, per_file=0)]
        assert not (tmp_path / "ix" / "vectors.faiss").exists(), "a search never writes"
        # The next writer saves what the search rebuilt, though it changed nothing.
        assert index.add([docs]).unchanged == 4
    assert after == before
    assert (tmp_path / "ix" / "vectors.faiss").exists()


def test_a_stale_faiss_file_is_brought_up_to_date(tmp_path, docs, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([docs / "garden.rst"])
    saved = (tmp_path / "ix" / "vectors.faiss").read_bytes(), (tmp_path / "ix" / "vectors.json").read_bytes()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([docs / "pets"])
    # Put back the cache from before the second run: it lacks the pets chunks.
    (tmp_path / "ix" / "vectors.faiss").write_bytes(saved[0])
    (tmp_path / "ix" / "vectors.json").write_bytes(saved[1])
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert index.search("kittens", limit=1)[0].path.endswith("cats.md")


def test_vectors_are_float32_blobs_in_sqlite(tmp_path, docs, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([docs / "garden.rst"])
    connection = sqlite3.connect(tmp_path / "ix" / "index.db")
    blob, text = connection.execute(
        "SELECT vectors.vector, chunks.text FROM chunks JOIN vectors ON vectors.id = chunks.vector_id LIMIT 1"
    ).fetchone()
    vector = np.frombuffer(blob, dtype="<f4")
    assert vector.shape == (64,)
    meta = dict(connection.execute("SELECT key, value FROM meta"))
    assert meta["model"] == "fake" and meta["dimensions"] == "64"


def test_batches_finished_together_are_committed_in_one_transaction(tmp_path, fake, monkeypatch):
    from concurrent.futures import Future

    from semsearch.errors import EmbeddingError
    from semsearch.storage.sqlite.store import Store

    with Index.open(tmp_path / "ix", embedder=fake) as index, index._backend.writer(10) as writer:
        pipeline = index._pipeline(writer, False, None)
        batches = [[(text.encode().ljust(16), text)] for text in ("one", "two", "three")]
        futures = [Future() for _ in batches]
        futures[0].set_result(list(fake.embed_documents(["one"])))
        futures[1].set_exception(EmbeddingError("The service is down."))
        futures[2].set_result(list(fake.embed_documents(["three"])))
        in_flight = dict(zip(futures, batches))
        transactions = []
        original = Store.transaction
        monkeypatch.setattr(Store, "transaction", lambda self: transactions.append(1) or original(self))
        pipeline._collect(in_flight, block=False)
        assert len(transactions) == 1 and index._backend.store.counts()["vectors"] == 2
        # The failure is raised once nothing that succeeded waits to be committed.
        assert list(in_flight) == [futures[1]]
        with pytest.raises(EmbeddingError, match="down"):
            pipeline._collect(in_flight, block=False)
