"""One Index searched from many threads at once, while another writer changes the index."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from semsearch import Index
from tests.conftest import FakeEmbedder


class CountingEmbedder(FakeEmbedder):
    """Records how many query embeddings run at the same moment."""

    def __init__(self, thread_safe: bool) -> None:
        super().__init__()
        self.thread_safe = thread_safe
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def embed_query(self, text):
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)
        try:
            return super().embed_query(text)
        finally:
            with self._count:
                self.running -= 1


QUERIES = ["cats purr", "wet food kittens", "dogs walk morning", "tomatoes sun", "roses spring", "night trains vienna"]


def test_searches_from_many_threads_give_what_one_thread_gets(location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        expected = {query: [(h.chunk_id, round(h.score, 6)) for h in index.search(query)] for query in QUERIES}

        def search(number: int):
            query = QUERIES[number % len(QUERIES)]
            return query, [(h.chunk_id, round(h.score, 6)) for h in index.search(query, mode=("hybrid", "dense", "keyword")[number % 3])]

        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(search, range(96)))
    for number, (query, hits) in enumerate(found):
        mode = ("hybrid", "dense", "keyword")[number % 3]
        if mode == "hybrid":
            assert hits == expected[query]
        else:
            assert hits, (query, mode)


def test_an_embedder_that_is_not_thread_safe_is_called_one_at_a_time(location, docs):
    for thread_safe, most in ((False, 1), (True, 2)):
        embedder = CountingEmbedder(thread_safe)
        with Index.open(location, embedder=embedder) as index:
            index.add([docs])
            if not index._backend.concurrent_reads:
                most = 1  # its reads take turns, the query's embedding with them
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(lambda q: index.search(q, mode="dense"), QUERIES * 3))
        assert (embedder.most == 1) if most == 1 else (embedder.most >= most), (thread_safe, embedder.most)


def test_searches_see_another_writers_commits_without_reopening(location, docs, tmp_path, fake):
    more = tmp_path / "more"
    more.mkdir()
    with Index.open(location, embedder=fake) as server:
        server.add([docs])
        assert not server.search("penguins huddle antarctic winter", mode="keyword")
        assert server.search("penguins huddle antarctic winter")[0].path.endswith(("cats.md", "dogs.txt", "garden.rst", "travel.html"))
        (more / "penguins.txt").write_text("Penguins huddle together through the antarctic winter.\n")
        # Another Index on the same folder: its own connections and vector cache, as in another process.
        with Index.open(location, embedder=FakeEmbedder()) as writer:
            writer.add([more])
        hits = server.search("penguins huddle antarctic winter")
        assert hits[0].path.endswith("penguins.txt")
        if server._backend.kind == "local":
            # The writer saved a cache of its commit: the server mapped that file rather than
            # reading the new vectors into memory.
            assert server._backend.cache.loaded().mapped
        with Index.open(location, embedder=FakeEmbedder()) as writer:
            writer.remove([more])
        assert not any(hit.path.endswith("penguins.txt") for hit in server.search("penguins huddle antarctic winter"))


def test_each_thread_reads_through_its_own_connection_and_close_closes_them_all(location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        assert index._backend.concurrent_reads
        stores = index._backend.store
        mine = stores.current()
        seen = []
        thread = threading.Thread(target=lambda: seen.append((stores.current(), index.search("cats purr"))))
        thread.start()
        thread.join()
        assert seen[0][0] is not mine and seen[0][1]
        assert [h.chunk_id for h in seen[0][1]] == [h.chunk_id for h in index.search("cats purr")]
        opened = stores.each()
        assert mine in opened
    # Every thread's connection, not only the opener's.
    for store in opened:
        if index._backend.kind == "postgres":
            assert store.conn.closed
        else:
            with pytest.raises(sqlite3.ProgrammingError, match="closed"):
                store.db.conn.execute("SELECT 1")


def test_a_hybrid_search_runs_its_two_retrievals_at_once_where_the_storage_says_so(location, docs, fake, monkeypatch):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        backend = index._backend
        expected = [(h.chunk_id, round(h.score, 6)) for h in index.search("cats purr food")]
        keyword_started = threading.Event()
        threads = {}
        dense, keyword = backend.dense, backend.keyword

        def slow_dense(*args):
            threads["dense"] = threading.get_ident()
            # Done one after the other, the keyword search could not start before this ends.
            overlapped = keyword_started.wait(5 if backend.parallel_retrieval else 0.05)
            threads["overlapped"] = overlapped
            return dense(*args)

        def marked_keyword(*args):
            threads["keyword"] = threading.get_ident()
            keyword_started.set()
            return keyword(*args)

        monkeypatch.setattr(backend, "dense", slow_dense)
        monkeypatch.setattr(backend, "keyword", marked_keyword)
        found = [(h.chunk_id, round(h.score, 6)) for h in index.search("cats purr food")]
        assert found == expected
        assert threads["overlapped"] == backend.parallel_retrieval
        assert (threads["dense"] != threads["keyword"]) == backend.parallel_retrieval
    assert backend.parallel_retrieval == (backend.kind == "postgres")


def test_a_retrieval_that_fails_in_its_helper_thread_fails_the_search(location, docs, fake, monkeypatch):
    from semsearch.errors import StorageError

    with Index.open(location, embedder=fake) as index:
        index.add([docs])

        def broken(*args):
            raise StorageError("The index database went away.", code="connection")

        monkeypatch.setattr(index._backend, "keyword", broken)
        with pytest.raises(StorageError, match="went away"):
            index.search("cats purr food")


def test_reads_take_turns_on_storage_that_cannot_share(location, docs, fake, monkeypatch):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        monkeypatch.setattr(type(index._backend), "concurrent_reads", False)
        inside = []
        seen = []
        original = index._backend.has_chunks

        def has_chunks():
            inside.append(1)
            seen.append(len(inside))
            time.sleep(0.01)
            inside.pop()
            return original()

        monkeypatch.setattr(index._backend, "has_chunks", has_chunks)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda q: index.search(q), QUERIES * 2))
    assert max(seen) == 1
