"""Reranking as a second stage: the blend by hand, and `Index.search(rerank=...)` against a
loopback rerank endpoint that scores by a known rule."""

from __future__ import annotations

import pytest

from semsearch import Index
from semsearch.errors import AuthenticationError, ModelNotFoundError
from semsearch.results import SearchResult
from semsearch.search.rerank import blend, first_stage_weight, relevance
from tests.openai_server import OpenAIServer

TOKEN = "rerank-index-token-3b7d"


def candidates(count: int) -> list[SearchResult]:
    return [
        SearchResult(path=f"doc{rank}", score=1.0 - rank / 100, text=f"text {rank}", start_line=1, end_line=1, chunk_id=rank)
        for rank in range(1, count + 1)
    ]


# -- the blend, by hand ----------------------------------------------------------------------


def test_the_weights_follow_the_first_stage_rank():
    assert [first_stage_weight(rank) for rank in (1, 3, 4, 10, 11, 40)] == [0.75, 0.75, 0.6, 0.6, 0.4, 0.4]


def test_a_blend_computed_by_hand():
    results = blend(candidates(4), [0.1, 0.2, 0.9, 0.3], depth=4, explain=True)
    # rank 1: 0.75 × 1 + 0.25 × 0.1 = 0.775; rank 2: 0.75 × 0.75 + 0.25 × 0.2 = 0.6125;
    # rank 3: 0.75 × 0.5 + 0.25 × 0.9 = 0.6; rank 4: 0.6 × 0.25 + 0.4 × 0.3 = 0.27.
    assert [result.path for result in results] == ["doc1", "doc2", "doc3", "doc4"]
    assert [round(result.score, 4) for result in results] == [0.775, 0.6125, 0.6, 0.27]
    assert results[2].explain["rerank_blend"] == "0.75 × rank 3 of 4 (0.5000) + 0.25 × relevance 0.9000 = 0.6000"
    assert results[2].explain["first_stage_rank"] == 3 and results[2].explain["rerank_score"] == 0.9


def test_an_unsure_reranker_leaves_the_first_stage_order():
    results = blend(candidates(40), [0.5] * 40)
    assert [result.path for result in results] == [f"doc{rank}" for rank in range(1, 41)]


def test_a_sure_reranker_lifts_a_passage_from_far_down_but_not_over_a_top_hit_it_merely_doubts():
    scores = [0.3] * 40
    scores[19] = 1.0  # rank 20: the reranker is sure
    scores[0] = 0.3   # rank 1 (say, the exact keyword hit): the reranker is lukewarm
    order = [result.path for result in blend(candidates(40), scores)]
    assert order.index("doc20") < order.index("doc4")  # lifted over weaker first-stage hits
    assert order[0] == "doc1"  # but not over the first stage's best
    scores[0] = 0.0  # even a reranker that rejects the top hit outright cannot bury it:
    # doc20 0.4 × 0.525 + 0.6 × 1 = 0.81, doc2 0.75 × 0.975 + 0.25 × 0.3 = 0.806,
    # doc3 0.7875, doc1 0.75 × 1 + 0 = 0.75, doc4 0.6 × 0.925 + 0.4 × 0.3 = 0.675.
    order = [result.path for result in blend(candidates(40), scores)]
    assert order[:5] == ["doc20", "doc2", "doc3", "doc1", "doc4"]


def test_a_rank_counts_against_the_depth_not_the_number_of_candidates():
    two = blend(candidates(2), [0.0, 1.0], depth=40)
    # doc2: 0.75 × 0.975 + 0.25 × 1 = 0.98125 beats doc1's 0.75; against a depth of 2 it
    # would count 0.75 × 0.5 + 0.25 = 0.625 and lose.
    assert [result.path for result in two] == ["doc2", "doc1"]
    assert [round(result.score, 5) for result in two] == [0.98125, 0.75]
    assert [result.path for result in blend(candidates(2), [0.0, 1.0])] == ["doc1", "doc2"]


def test_logits_are_put_on_a_0_to_1_scale():
    assert relevance([0.2, 0.9]) == [0.2, 0.9]
    low, middle, high = relevance([-4.0, 0.0, 4.0])
    assert 0 < low < 0.05 and middle == 0.5 and 0.95 < high < 1


# -- through the index -----------------------------------------------------------------------


@pytest.fixture
def server():
    with OpenAIServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def index(server, fake, tmp_path):
    with Index.open(tmp_path / "index", embedder=fake, base_url=server.url, api_key=TOKEN, rps=1000.0, burst=1000,
                    backoff=0.01) as opened:
        opened.add_texts(
            [f"note{i}" for i in range(12)],
            [f"garden note {i}: tomatoes and roses" + (" PRUNE-MARKER" if i == 9 else "") for i in range(12)],
        )
        yield opened


def marker_rule(query: str, document: str) -> float:
    """The test reranker's rule: a passage holding the marker is the answer, all else is not."""
    return 1.0 if "PRUNE-MARKER" in document else 0.1


def test_the_final_order_follows_the_rerankers_rule(index, server):
    server.rerank_rule = marker_rule
    # The first stage as reranking reads it: as deep as the rerank depth (40), here all 12.
    plain = index.search("garden tomatoes roses", limit=40, rerank=False)
    first = [hit.path for hit in plain]
    results = index.search("garden tomatoes roses", limit=12, rerank=True, explain=True)
    assert results.reranked is True and results.notes == [] and all(hit.reranked for hit in results)
    # One request, with every candidate in first-stage order.
    assert len(server.reranks) == 1 and server.reranks[0]["documents"] == [hit.text for hit in plain]

    def expected(path: str) -> float:
        rank = first.index(path) + 1
        weight = first_stage_weight(rank)
        # Ranks count against the rerank depth, 40, not the 12 candidates found.
        return weight * (1 - (rank - 1) / 40) + (1 - weight) * (1.0 if path == "note9" else 0.1)

    assert [hit.path for hit in results] == sorted(first, key=lambda path: -expected(path))
    assert [hit.score for hit in results] == pytest.approx([expected(hit.path) for hit in results])
    assert results.index(next(hit for hit in results if hit.path == "note9")) < first.index("note9")
    marked = next(hit for hit in results if hit.path == "note9")
    assert marked.explain["rerank_score"] == 1.0 and "dense_rank" in marked.explain


def test_the_depth_bounds_what_is_sent_and_the_rest_keeps_its_order(index, server):
    results = index.search("garden tomatoes roses", limit=12, rerank=True, rerank_depth=4)
    assert len(server.reranks[0]["documents"]) == 4
    plain = index.search("garden tomatoes roses", limit=12, rerank=False)
    assert sorted(hit.path for hit in results[:4]) == sorted(hit.path for hit in plain[:4])
    assert [hit.path for hit in results[4:]] == [hit.path for hit in plain[4:]]
    assert all(hit.score == 0.0 for hit in results[4:])


@pytest.mark.parametrize(
    ("misbehave", "said"),
    [
        ({"rerank_script": [500] * 3}, "kept failing (HTTP 500)"),
        ({"rerank_latency": 2.0}, "time allowed"),
        ({"rerank_models": []}, "lists no rerank model"),
        ({"rerank_script": [404]}, "no rerank endpoint"),
    ],
)
def test_a_failing_slow_or_missing_reranker_falls_back_to_the_first_stage_order(
    server, fake, tmp_path, misbehave, said
):
    with Index.open(tmp_path / "index", embedder=fake, base_url=server.url, api_key=TOKEN, rps=1000.0, burst=1000,
                    backoff=0.01, max_retries=2) as index:
        index.add_texts(["a", "b", "c"], ["cats purr", "dogs bark at cats", "weather report"])
        plain = index.search("cats bark", rerank=False)
        for name, value in misbehave.items():
            setattr(server, name, value)
        index.reranker.budget = 0.5
        results = index.search("cats bark", rerank=True)
    assert [(hit.path, hit.score) for hit in results] == [(hit.path, hit.score) for hit in plain]
    assert results.reranked is False and all(hit.reranked is False for hit in results)
    assert len(results.notes) == 1 and results.notes[0].startswith("Not reranked, results are in first-stage order")
    assert said in results.notes[0] and TOKEN not in results.notes[0]


def test_a_wrong_token_or_rerank_model_is_an_error_not_a_fallback(server, fake, tmp_path):
    with Index.open(tmp_path / "index", embedder=fake, base_url=server.url, api_key="wrong", rps=1000.0,
                    burst=1000) as index:
        index.add_texts(["a"], ["cats purr"])
        with pytest.raises(AuthenticationError):
            index.search("cats", rerank=True)
    with Index.open(tmp_path / "index", embedder=fake, base_url=server.url, api_key=TOKEN) as index:
        index.reranker.model_id = "acme/no-such-reranker"
        with pytest.raises(ModelNotFoundError):
            index.search("cats", rerank=True)


def test_reranking_is_off_unless_asked_or_set(index, server, monkeypatch):
    index.search("garden", rerank=None)
    assert server.reranks == []
    monkeypatch.setenv("SEMSEARCH_RERANK_MODEL", "Qwen/Qwen3-VL-Reranker-8B")
    assert index.search("garden", rerank=None).reranked is True
    assert index.search("garden", rerank=False).reranked is None
    assert len(server.reranks) == 1


def test_a_reranker_of_ones_own_is_used_by_default(fake, tmp_path):
    class Shortest:
        model_id = "shortest-first"

        def rerank(self, query: str, documents: list[str]) -> list[float]:
            return [1.0 / len(text) for text in documents]

    with Index.open(tmp_path / "index", embedder=fake, reranker=Shortest()) as index:
        index.add_texts(["long", "short"], ["cats " * 30 + "purr", "cats"])
        results = index.search("cats purr")
    assert results.reranked is True
    assert [hit.explain for hit in results] == [None, None]


def test_the_rerank_depth_is_checked(index):
    from semsearch.errors import SemsearchError

    with pytest.raises(SemsearchError, match="rerank_depth"):
        index.search("garden", rerank=True, rerank_depth=0)
