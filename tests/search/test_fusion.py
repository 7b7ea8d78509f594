"""Fusion of the dense and keyword rankings, and how `--explain` shows it (no index needed)."""

from __future__ import annotations

import pytest

from semsearch.apps.cli.searching import explanation as _explanation
from semsearch.results import SearchResult
from semsearch.search import ranking as search
from semsearch.text.keywords import keyword_text, match_expression, query_terms


def test_query_terms_and_match_expression():
    assert query_terms('Tea AND "green" tea (NEAR) -x*') == ["tea", "and", "green", "near", "x"]
    assert match_expression(["a\"b", "c"]) == '"a""b" OR "c"'
    assert keyword_text("数据库 and text") == " 数据 据库  and text"
    assert query_terms("数据库") == ["数据", "据库"]


def _dense(*scores: float) -> search.Ranking:
    return search.Ranking(list(range(1, len(scores) + 1)), list(scores))


def test_fusion_lifts_a_chunk_that_matches_the_rare_words_of_the_query():
    # Dense sees five similar chunks; chunk 5 alone holds the query's error code.
    dense = _dense(0.86, 0.855, 0.85, 0.845, 0.84, *[0.80] * 45)
    keyword = search.Ranking([5], [9.0], ceiling=10.0)
    assert search.fuse(dense, keyword)[0][0] == 5


def test_fusion_leaves_dense_alone_when_keywords_match_only_common_words():
    # A paraphrase: the keyword hits share a common word or two with the query.
    dense = _dense(0.86, 0.855, 0.85, 0.845, 0.84, *[0.80] * 45)
    keyword = search.Ranking([4, 3], [1.0, 0.8], ceiling=10.0)
    assert [chunk for chunk, _ in search.fuse(dense, keyword)[:5]] == [1, 2, 3, 4, 5]


def test_fusion_lets_keywords_decide_only_where_the_vectors_are_close():
    # Chunk 2 matches every word of the query in both cases. Where the vectors can hardly
    # tell the two apart (0.80 against 0.79) the keywords decide; where they are sure (0.9
    # against 0.5) they do not. Scaled per query between best and worst, both cases would
    # look the same to fusion, and come out the same.
    keyword = search.Ranking([2], [10.0], ceiling=10.0)
    assert [chunk for chunk, _ in search.fuse(_dense(0.80, 0.79), keyword)] == [2, 1]
    assert [chunk for chunk, _ in search.fuse(_dense(0.9, 0.5), keyword)] == [1, 2]


def test_fusion_counts_a_keyword_only_hit_at_the_dense_floor():
    dense = _dense(0.9, 0.8, 0.7)
    fused = dict(search.fuse(dense, search.Ranking([99], [10.0], ceiling=10.0)))
    assert fused[99] == pytest.approx((0.7 + search.KEYWORD_WEIGHT) / (1 + search.KEYWORD_WEIGHT))


def test_fusion_scores_do_not_depend_on_how_deep_the_dense_list_was_read():
    # Chunk 200 holds the query's words and lies at dense rank 120: a search that read
    # 100 dense candidates sees it as keyword-only, one that read 500 sees its cosine.
    scores = [0.9 - 0.001 * rank for rank in range(500)]
    keyword = search.Ranking([200, 7], [10.0, 4.0], ceiling=10.0)
    shallow = dict(search.fuse(search.Ranking(list(range(81, 181)), scores[:100]), keyword))
    deep = dict(search.fuse(search.Ranking(list(range(81, 581)), scores), keyword))
    assert shallow[200] == pytest.approx(deep[200])

    def best(fused):
        return sorted(fused, key=lambda chunk: -fused[chunk])[:10]

    assert best(shallow) == best(deep)


def test_fusion_without_keyword_hits_is_the_dense_order():
    dense = _dense(0.9, 0.8, 0.7)
    fused = search.fuse(dense, search.Ranking([], [], ceiling=3.0))
    assert [chunk for chunk, _ in fused] == [1, 2, 3]
    assert fused[0][1] == pytest.approx(0.9 / (1 + search.KEYWORD_WEIGHT))


def test_explain_of_a_keyword_only_hit_shows_the_dense_floor_it_counted():
    dense = _dense(0.9, 0.8, 0.7)
    keyword = search.Ranking([99], [5.0], ceiling=10.0)
    score = dict(search.fuse(dense, keyword))[99]
    hit = SearchResult(path="notes.md", score=score, text="", start_line=1, end_line=1, chunk_id=99)
    search._explain([hit], dense, keyword)
    weight, power = search.KEYWORD_WEIGHT, search.KEYWORD_POWER
    counted = 0.5**power
    fusion = f"(cosine 0.7000 + {weight:g} × share^{power:g} {counted:.6f}) / {1 + weight:g} = {score:.4f}"
    assert hit.explain == {
        "dense_rank": None, "dense_score": None,
        "keyword_rank": 1, "keyword_score": 5.0, "keyword_share": 0.5, "keyword_ceiling": 10.0,
        "dense_counted": 0.7, "keyword_counted": round(counted, 6), "keyword_power": power, "keyword_weight": weight,
        "fusion": fusion,
    }
    assert score == pytest.approx((0.7 + weight * counted) / (1 + weight))
    assert _explanation(hit.explain) == (
        "dense: not in its top results (counts the cosine at its floor, 0.7000)\n"
        f"keyword rank 1, BM25 5.0000 of 10.0000 for every word of the query: share 0.500, ^{power:g} = {counted:.6f}\n"
        f"hybrid score {fusion}"
    )


def test_explain_in_one_mode_shows_that_retriever_alone():
    dense_hit = SearchResult(path="a.md", score=0.8, text="", start_line=1, end_line=1, chunk_id=2)
    search._explain([dense_hit], _dense(0.9, 0.8), None)
    assert dense_hit.explain == {"dense_rank": 2, "dense_score": 0.8}
    assert _explanation(dense_hit.explain) == "dense rank 2, cosine 0.8000"
    keyword_hit = SearchResult(path="b.md", score=5.0, text="", start_line=1, end_line=1, chunk_id=7)
    search._explain([keyword_hit], None, search.Ranking([7], [5.0], ceiling=10.0))
    assert keyword_hit.explain == {"keyword_rank": 1, "keyword_score": 5.0, "keyword_share": 0.5, "keyword_ceiling": 10.0}
    assert _explanation(keyword_hit.explain) == "keyword rank 1, BM25 5.0000 of 10.0000 for every word of the query: share 0.500"


def test_the_explanation_of_a_fused_score_adds_up_to_it():
    # A small share, which the power makes smaller still: the explanation must show the
    # number that was added, not 0.000.
    dense = _dense(0.81, 0.80, 0.79)
    keyword = search.Ranking([2], [0.71], ceiling=10.0)
    hit = SearchResult(path="a.md", score=dict(search.fuse(dense, keyword))[2], text="", start_line=1, end_line=1, chunk_id=2)
    search._explain([hit], dense, keyword)
    facts = hit.explain
    assert facts["keyword_counted"] == pytest.approx(0.071**search.KEYWORD_POWER, rel=1e-3) and facts["keyword_counted"] > 0
    total = (facts["dense_counted"] + facts["keyword_weight"] * facts["keyword_counted"]) / (1 + facts["keyword_weight"])
    assert total == pytest.approx(hit.score, abs=1e-4)
    assert "share^3 0.000358" in facts["fusion"] and "^3 = 0.000358" in _explanation(facts)


def test_a_chunk_waiting_for_its_vector_counts_what_embedded_chunks_with_its_keyword_evidence_count():
    # Chunks 1-50 are embedded; 101 and 102 wait for their vectors. 3 and 40 are keyword hits
    # with full and little evidence; each waiting hit stands in with its nearest neighbours.
    dense = _dense(0.9, 0.88, 0.87, *[0.80 - i * 0.001 for i in range(47)])
    keyword = search.Ranking([3, 101, 40, 102], [10.0, 10.0, 2.0, 2.0], ceiling=10.0)
    stand_ins = search.stand_ins(dense, keyword, {101, 102})
    counted = dense.counted()
    assert set(stand_ins) == {101, 102}
    # Neither the floor (what a keyword-only hit counts) nor the top: the mean of its neighbours'.
    assert stand_ins[101] == pytest.approx((counted[3] + counted[40]) / 2)
    fused = dict(search.fuse(dense, keyword, {101, 102}))
    without = dict(search.fuse(dense, keyword))
    # Above the floor a keyword-only hit counts, below the embedded chunk it shares its words with.
    assert without[101] < fused[101] < fused[3]


def test_with_no_embedded_keyword_hit_a_waiting_chunk_counts_the_floor():
    dense = _dense(0.9, *[0.5] * 49)
    keyword = search.Ranking([101], [5.0], ceiling=10.0)
    assert search.stand_ins(dense, keyword, {101}) == {101: dense.floor()}
    assert dict(search.fuse(dense, keyword, {101})) == dict(search.fuse(dense, keyword))


def test_explain_says_a_hit_waits_for_its_vector_and_what_it_counted():
    dense = _dense(0.9, 0.88, 0.87, *[0.80 - i * 0.001 for i in range(47)])
    keyword = search.Ranking([3, 101], [10.0, 10.0], ceiling=10.0)
    hit = SearchResult(path="a.md", score=0.0, text="t", start_line=1, end_line=1, chunk_id=101)
    search._explain([hit], dense, keyword, {101})
    assert hit.explain["waiting"] is True and hit.explain["dense_counted"] == round(dense.counted()[3], 4)
    said = _explanation(hit.explain)
    assert said.startswith("waiting for its vector, found by keywords alone: counts 0.8700") and "stand-in cosine" in said
