"""What keeps a large index fast: keyword searches that skip common words' long posting lists
(with their counts recorded, not recounted), and result rows read only for the top hits."""

from __future__ import annotations

import json

import pytest

from semsearch import Index
from semsearch.storage.sqlite import keywords as keyword_store


@pytest.fixture
def small_thresholds(monkeypatch):
    """Make an index of a few dozen chunks count as large."""
    monkeypatch.setattr(keyword_store, "PRUNE_ABOVE", 10)
    monkeypatch.setattr(keyword_store, "COMMON_TERM_CHUNKS", 5)
    monkeypatch.setattr(keyword_store, "POSTING_BUDGET", 8)


def corpus(count: int = 40) -> list[str]:
    texts = [f"the common report number {i} about the weather" for i in range(count)]
    texts[7] += " with a rare zeppelin sighting"
    return texts


def test_common_word_counts_are_recorded_after_a_run_and_used_by_searches(tmp_path, fake, small_thresholds):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts([f"r{i}" for i in range(40)], corpus())
        recorded = json.loads(index._backend.store.meta()["common_terms"])
        assert recorded["chunks"] == 40 and recorded["terms"]["common"] == 40 and "zeppelin" not in recorded["terms"]
        # The common words are not searched; the rare one decides, and its score matches the ceiling's share.
        found, ceiling = index._backend.store.keyword_search(["common", "weather", "zeppelin"], 10)
        assert [chunk_id for chunk_id, _ in found] == [index.search("zeppelin", mode="keyword")[0].chunk_id]
        assert ceiling > found[0][1] > 0
        assert index.search("common weather zeppelin", mode="keyword", limit=1)[0].path == "r7"
        # A query of common words only still finds something: its rarest word is searched.
        assert index.search("common weather", mode="keyword", limit=3)


def test_words_in_half_the_chunks_are_not_searched_on_any_index(tmp_path, fake):
    # Their IDF is floored to nothing, so they would only make BM25 score every chunk.
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts([f"r{i}" for i in range(40)], corpus())
        found, ceiling = index._backend.store.keyword_search(["common", "weather", "zeppelin"], 100)
        assert len(found) == 1 and index.search("zeppelin", mode="keyword")[0].chunk_id == found[0][0]
        assert ceiling == pytest.approx(found[0][1], rel=0.5)
        # With nothing else in the query, they are searched all the same.
        assert len(index._backend.store.keyword_search(["common", "weather"], 100)[0]) == 40


def test_counts_are_recounted_only_when_the_index_doubles_or_halves(tmp_path, fake, small_thresholds):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts([f"r{i}" for i in range(40)], corpus())
        assert not index._backend.store.refresh_term_statistics()
        index.add_texts([f"s{i}" for i in range(30)], corpus(30))
        assert json.loads(index._backend.store.meta()["common_terms"])["chunks"] == 40  # 70 < 2 × 40
        index.add_texts([f"t{i}" for i in range(20)], corpus(20))
        assert json.loads(index._backend.store.meta()["common_terms"])["chunks"] == 90


def test_results_read_rows_only_as_far_as_the_per_file_cap_needs(tmp_path, fake, monkeypatch):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts([f"r{i}" for i in range(60)], [f"alpha beta gamma {i}" for i in range(60)])
        asked: list[int] = []
        original = index._backend.store.chunk_rows

        def counting(ids):
            asked.append(len(ids))
            return original(ids)

        monkeypatch.setattr(index._backend.store, "chunk_rows", counting)
        hits = index.search("alpha beta", limit=3, mode="dense")
        assert len(hits) == 3 and asked == [3]
        # Each record is its own document: with one per file allowed, nothing is passed over.
        asked.clear()
        assert len(index.search("alpha beta", limit=3, mode="dense", per_file=1)) == 3 and asked == [3]
