"""Hybrid, dense and keyword search; safe queries; filters; explanations."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from click.testing import CliRunner

from semsearch import Index
from semsearch.apps.cli import _explanation, cli
from semsearch.errors import SemsearchError
from semsearch.search import ranking as search
from semsearch.text.keywords import keyword_text, match_expression, query_terms


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "errors.md").write_text("# Error codes\n\nError KX-4471 means the sync token expired; sign in again.\n")
    (folder / "tea.txt").write_text("Green tea should steep for two minutes in water below boiling.\n")
    (folder / "koeln.txt").write_text("Grüße aus Köln: the cathedral took six centuries to finish.\n")
    (folder / "beijing.txt").write_text("北京是中国的首都，有很多历史悠久的建筑。\n")
    (folder / "tokyo.txt").write_text("東京の地下鉄はとても便利です。\n")
    return folder


def test_keyword_mode_finds_exact_codes(tmp_path, library, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        hits = index.search("KX-4471", mode="keyword")
    assert hits[0].path.endswith("errors.md")
    assert fake.queries == [], "keyword search needs no embedding"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("koln cathedral", "koeln.txt"), ("Köln", "koeln.txt"), ("GRUSSE", None), ("grüße", "koeln.txt"),
     ("北京的建筑", "beijing.txt"), ("首都", "beijing.txt"), ("地下鉄", "tokyo.txt")],
)
def test_keywords_fold_accents_and_handle_cjk(tmp_path, library, fake, query, expected):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        hits = index.search(query, mode="keyword")
    if expected is None:  # unicode61 folds accents, not ß to ss
        assert not any(hit.path.endswith("koeln.txt") for hit in hits)
    else:
        assert hits and hits[0].path.endswith(expected)


HOSTILE = ['"unbalanced', "AND", "OR NOT", "tea AND", "(green", "tea)", "-tea", "tea*", "*", "NEAR(tea water)",
           "col:tea", "^tea", "tea's \"steep\"", "🍵 tea", "''", "\\", "100%", "a OR b AND (c", "{tea}", "tea:", ";DROP TABLE chunks"]


@pytest.mark.parametrize("query", HOSTILE)
@pytest.mark.parametrize("mode", ["keyword", "hybrid", "dense"])
def test_any_text_is_a_query(tmp_path, library, fake, query, mode):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        hits = index.search(query, mode=mode)
    assert isinstance(hits, list)
    if "tea" in query and mode == "keyword":
        assert hits[0].path.endswith("tea.txt")


def test_query_terms_and_match_expression():
    assert query_terms('Tea AND "green" tea (NEAR) -x*') == ["tea", "and", "green", "near", "x"]
    assert match_expression(["a\"b", "c"]) == '"a""b" OR "c"'
    assert keyword_text("数据库 and text") == " 数据 据库  and text"
    assert query_terms("数据库") == ["数据", "据库"]


def test_hybrid_equals_dense_when_keywords_find_nothing(tmp_path, fake):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(12):
        (folder / f"n{i}.txt").write_text(f"note {i} about topic{i % 4} and theme{i % 3}")
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([folder])
        query = "zzzunknown qqqabsent"
        dense = [(h.chunk_id, round(h.score, 6)) for h in index.search(query, mode="dense", per_file=0)]
        hybrid = [h.chunk_id for h in index.search(query, mode="hybrid", per_file=0)]
    assert [chunk_id for chunk_id, _ in dense] == hybrid


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


def test_explain_reports_ranks_scores_and_fusion(tmp_path, library, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        hit = index.search("green tea steep", explain=True)[0]
        plain = index.search("green tea steep")[0]
    assert plain.explain is None
    facts = hit.explain
    assert facts["dense_rank"] >= 1 and facts["keyword_rank"] == 1
    assert facts["dense_counted"] == pytest.approx(facts["dense_score"], abs=1e-4)
    assert 0 < facts["keyword_share"] <= 1
    assert facts["keyword_counted"] == pytest.approx(facts["keyword_share"] ** search.KEYWORD_POWER, abs=1e-3)
    expected = (facts["dense_counted"] + search.KEYWORD_WEIGHT * facts["keyword_counted"]) / (1 + search.KEYWORD_WEIGHT)
    assert hit.score == pytest.approx(expected, abs=1e-3)
    assert f"= {hit.score:.4f}" in facts["fusion"]


def test_unknown_mode_is_refused(tmp_path, library, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        with pytest.raises(SemsearchError, match="hybrid, dense, keyword"):
            index.search("tea", mode="fuzzy")


@pytest.fixture
def crowded(tmp_path):
    """Many strong matches in one folder, a few weak ones in another."""
    root = tmp_path / "crowded"
    (root / "main").mkdir(parents=True)
    (root / "side").mkdir()
    for i in range(40):
        (root / "main" / f"apple{i}.md").write_text(f"Apples apples apples: orchard report {i}.")
    for i in range(3):
        (root / "side" / f"fruit{i}.txt").write_text(f"A note that mentions apples once, number {i}.")
    return root


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_apply_before_the_cut(tmp_path, crowded, fake, mode):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([crowded])
        unfiltered = index.search("apples orchard", mode=mode, limit=5)
        assert all("/main/" in hit.path for hit in unfiltered)
        by_path = index.search("apples orchard", mode=mode, limit=5, path="side/*")
        by_ext = index.search("apples orchard", mode=mode, limit=5, ext="txt")
        by_name = index.search("apples orchard", mode=mode, limit=5, path=["fruit1.*", "fruit2.*"])
    assert sorted(os.path.basename(h.path) for h in by_path) == ["fruit0.txt", "fruit1.txt", "fruit2.txt"]
    assert sorted(os.path.basename(h.path) for h in by_ext) == ["fruit0.txt", "fruit1.txt", "fruit2.txt"]
    assert sorted(os.path.basename(h.path) for h in by_name) == ["fruit1.txt", "fruit2.txt"]


def test_date_filters(tmp_path, crowded, fake):
    old = crowded / "side" / "fruit0.txt"
    stamp = time.mktime((2020, 6, 1, 12, 0, 0, 0, 0, -1))
    os.utime(old, (stamp, stamp))
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([crowded])
        before = index.search("apples", before="2021-01-01", limit=50)
        after = index.search("apples", after="2021-01-01", limit=50, per_file=1)
        with pytest.raises(SemsearchError, match="YYYY-MM-DD"):
            index.search("apples", after="last tuesday")
    assert [os.path.basename(h.path) for h in before] == ["fruit0.txt"]
    assert len(after) == 42 and all(not h.path.endswith("fruit0.txt") for h in after)


def test_keyword_index_follows_changes_and_check_repairs_it(tmp_path, library, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        (library / "tea.txt").write_text("Black tea wants boiling water and four minutes.\n")
        (library / "errors.md").unlink()
        index.add([library])
        assert index.search("KX-4471", mode="keyword") == []
        assert index.search("green", mode="keyword") == []
        assert index.search("black tea boiling", mode="keyword")[0].path.endswith("tea.txt")
        assert index.check().problems == []
    connection = sqlite3.connect(tmp_path / "ix" / "index.db")
    with connection:
        connection.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")
    connection.close()
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        assert any("keyword index" in problem for problem in index.check().problems)
        assert index.check(repair=True).ok
        assert index.check().problems == []
        assert index.search("black tea boiling", mode="keyword")[0].path.endswith("tea.txt")


def test_keyword_counts_follow_changes_by_another_connection(tmp_path, library, fake):
    # A searcher keeps its query words' analysis and counts, but not past a change.
    with Index.open(tmp_path / "ix", embedder=fake) as searcher:
        with Index.open(tmp_path / "ix", embedder=fake) as writer:
            writer.add([library])
        assert searcher._backend.store.keyword_search(["zeppelin"], 10)[0] == []
        assert len(searcher._backend.store.keyword_search(["minutes", "zeppelin"], 10)[0]) == 1
        (library / "zeppelin.txt").write_text("The zeppelin flight took ninety minutes.\n")
        with Index.open(tmp_path / "ix", embedder=fake) as writer:
            writer.add([library])
        assert len(searcher._backend.store.keyword_search(["zeppelin"], 10)[0]) == 1
        assert searcher.search("zeppelin minutes", mode="keyword")[0].path.endswith("zeppelin.txt")


def test_cli_search_options(docs, fake_model):
    runner = CliRunner()
    runner.invoke(cli, ["index", str(docs), "--model", "fake"], catch_exceptions=False)
    result = runner.invoke(cli, ["search", "kittens", "--mode", "keyword", "--json", "--explain"])
    hits = json.loads(result.output)
    assert hits[0]["path"].endswith("cats.md") and hits[0]["explain"]["keyword_rank"] == 1
    result = runner.invoke(cli, ["search", "cats", "--ext", "rst,html", "--json"])
    assert all(h["path"].endswith((".rst", ".html")) for h in json.loads(result.output))
    result = runner.invoke(cli, ["search", "cats", "--path", "pets/*", "--path", "garden.rst", "--json"])
    assert {os.path.basename(h["path"]) for h in json.loads(result.output)} == {"cats.md", "dogs.txt", "garden.rst"}
    result = runner.invoke(cli, ["search", "cats", "--explain", "--limit", "1"])
    assert "dense rank" in result.output and "keyword rank" in result.output
    result = runner.invoke(cli, ["search", "cats", "--after", "soon"])
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.output


def test_explain_of_a_keyword_only_hit_shows_the_dense_floor_it_counted():
    dense = _dense(0.9, 0.8, 0.7)
    keyword = search.Ranking([99], [5.0], ceiling=10.0)
    score = dict(search.fuse(dense, keyword))[99]
    hit = search.SearchResult(path="notes.md", score=score, text="", start_line=1, end_line=1, chunk_id=99)
    search._explain([hit], dense, keyword)
    weight = search.KEYWORD_WEIGHT
    counted = 0.5**search.KEYWORD_POWER
    fusion = f"(0.700 + {weight:g} × {counted:.3f}) / {1 + weight:g} = {score:.4f}"
    assert hit.explain == {
        "dense_rank": None, "dense_score": None,
        "keyword_rank": 1, "keyword_score": 5.0, "keyword_share": 0.5,
        "dense_counted": 0.7, "keyword_counted": round(counted, 4), "fusion": fusion,
    }
    assert score == pytest.approx((0.7 + weight * counted) / (1 + weight))
    assert _explanation(hit.explain) == (
        "dense: not in its top results\n"
        "keyword rank 1, BM25 5.0000, share of the query 0.500\n"
        f"hybrid score {fusion}"
    )


def test_explain_in_one_mode_shows_that_retriever_alone():
    dense_hit = search.SearchResult(path="a.md", score=0.8, text="", start_line=1, end_line=1, chunk_id=2)
    search._explain([dense_hit], _dense(0.9, 0.8), None)
    assert dense_hit.explain == {"dense_rank": 2, "dense_score": 0.8}
    assert _explanation(dense_hit.explain) == "dense rank 2, cosine 0.8000"
    keyword_hit = search.SearchResult(path="b.md", score=5.0, text="", start_line=1, end_line=1, chunk_id=7)
    search._explain([keyword_hit], None, search.Ranking([7], [5.0], ceiling=10.0))
    assert keyword_hit.explain == {"keyword_rank": 1, "keyword_score": 5.0, "keyword_share": 0.5}
    assert _explanation(keyword_hit.explain) == "keyword rank 1, BM25 5.0000, share of the query 0.500"


def test_snippets_are_worked_out_when_first_read(tmp_path, library, fake, monkeypatch):
    from semsearch.text import snippets

    calls = []
    real = snippets.best_snippet
    monkeypatch.setattr(snippets, "best_snippet", lambda text, query: calls.append(query) or real(text, query))
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([library])
        hits = index.search("sync token expired", mode="keyword")
    assert calls == [], "a search that reads only paths and texts pays for no snippet"
    first = hits[0]
    assert first.query == "sync token expired"
    assert first.snippet == "Error KX-4471 means the sync token expired; sign in again."
    assert [first.text[a:b] for a, b in first.highlights] == ["sync", "token", "expired"]
    assert calls == ["sync token expired"], "worked out once, for snippet and highlights together"
    values = first.to_dict()
    assert "query" not in values and values["snippet"] == first.snippet and values["highlights"] == first.highlights
    first.query = "sign in"
    assert [first.text[a:b] for a, b in first.highlights] == ["sign"]
    first.text = "Please sign the form."
    assert first.snippet == "Please sign the form." and first.highlights == [[7, 11]]


def test_words_with_combining_marks_are_whole_keywords(tmp_path, fake):
    # Devanagari vowel signs are combining marks: cut at them, "दिल्ली" (Delhi) became
    # "द", "ल", "ल", which "दिल" (heart) holds too.
    assert query_terms("नई दिल्ली?") == ["नई", "दिल्ली"]
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["delhi", "heart"], ["नई दिल्ली भारत की राजधानी है।", "मेरा दिल खुश है।"])
        hits = index.search("दिल्ली", mode="keyword")
    assert [hit.path for hit in hits] == ["delhi"]
    assert [hits[0].text[a:b] for a, b in hits[0].highlights] == ["दिल्ली"]


@pytest.mark.parametrize("mode", search.MODES)
def test_one_long_document_does_not_hide_the_others_under_the_per_file_cap(tmp_path, fake, mode):
    book = "\n\n".join(f"Zebras zebras zebras graze on the plain, paragraph {i}. " * 20 for i in range(400))
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["book"], [book])
        index.add_texts([f"note{i}" for i in range(5)], [f"Note {i} on animals: one is a zebra, plus lions." for i in range(5)])
        assert index.status().chunks > 300
        hits = index.search("zebras graze", mode=mode, limit=5, per_file=1)
    assert len(hits) == 5 and len({hit.path for hit in hits}) == 5


def test_a_folder_name_pattern_takes_the_files_in_folders_of_that_name(tmp_path, crowded, fake):
    (crowded / "main" / "side").mkdir()
    (crowded / "main" / "side" / "deep.md").write_text("Apples in a folder called side, deeper down.")
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([crowded])
        found = {os.path.relpath(hit.path, crowded) for hit in index.search("apples", limit=50, path="side/", per_file=1)}
        assert found == {"side/fruit0.txt", "side/fruit1.txt", "side/fruit2.txt", "main/side/deep.md"}
        assert index.search("apples", path="crowded/") == [], "only folders below the indexed one count"


def test_arabic_matches_with_or_without_its_vowel_marks(tmp_path, fake):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add_texts(["pointed", "plain"], ["الكِتَابُ عَلَى الطَّاوِلَةِ", "ذهبت إلى المدرسة صباحا"])
        assert [hit.path for hit in index.search("الكتاب", mode="keyword")] == ["pointed"]
        assert [hit.path for hit in index.search("المَدْرَسَة", mode="keyword")] == ["plain"]


def test_path_patterns_as_in_gitignore(tmp_path, crowded, fake, monkeypatch):
    with Index.open(tmp_path / "ix", embedder=fake) as index:
        index.add([crowded])
        monkeypatch.chdir(crowded)
        for pattern in ("side", "./side/*", "fruit1.txt", "./side/"):
            found = {os.path.relpath(hit.path, crowded) for hit in index.search("apples", limit=50, path=pattern, per_file=1)}
            assert found and all(path.startswith("side/") for path in found), pattern
