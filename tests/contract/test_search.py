"""Hybrid, dense and keyword search; safe queries; filters; explanations."""

from __future__ import annotations

import os
import time

import pytest

from semsearch import Index
from semsearch.errors import SemsearchError
from semsearch.search import MODES
from semsearch.search import ranking as search
from semsearch.text.keywords import query_terms
from tests.conftest import FakeEmbedder


def test_keyword_mode_finds_exact_codes(tmp_path, location, library, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([library])
        hits = index.search("KX-4471", mode="keyword")
    assert hits[0].path.endswith("errors.md")
    assert fake.queries == [], "keyword search needs no embedding"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("koln cathedral", "koeln.txt"), ("Köln", "koeln.txt"), ("GRUSSE", None), ("grüße", "koeln.txt"),
     ("北京的建筑", "beijing.txt"), ("首都", "beijing.txt"), ("地下鉄", "tokyo.txt")],
)
def test_keywords_fold_accents_and_handle_cjk(tmp_path, location, library, fake, query, expected):
    with Index.open(location, embedder=fake) as index:
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
def test_any_text_is_a_query(tmp_path, location, library, fake, query, mode):
    with Index.open(location, embedder=fake) as index:
        index.add([library])
        hits = index.search(query, mode=mode)
    assert isinstance(hits, list)
    if "tea" in query and mode == "keyword":
        assert hits[0].path.endswith("tea.txt")


def test_hybrid_equals_dense_when_keywords_find_nothing(tmp_path, location, fake):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(12):
        (folder / f"n{i}.txt").write_text(f"note {i} about topic{i % 4} and theme{i % 3}")
    with Index.open(location, embedder=fake) as index:
        index.add([folder])
        query = "zzzunknown qqqabsent"
        dense = [(h.chunk_id, round(h.score, 6)) for h in index.search(query, mode="dense", per_file=0)]
        hybrid = [h.chunk_id for h in index.search(query, mode="hybrid", per_file=0)]
    assert [chunk_id for chunk_id, _ in dense] == hybrid


def test_explain_reports_ranks_scores_and_fusion(tmp_path, location, library, fake):
    with Index.open(location, embedder=fake) as index:
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


def test_unknown_mode_is_refused(tmp_path, location, library, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([library])
        with pytest.raises(SemsearchError, match="hybrid, dense, keyword"):
            index.search("tea", mode="fuzzy")


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_apply_before_the_cut(tmp_path, location, crowded, fake, mode):
    with Index.open(location, embedder=fake) as index:
        index.add([crowded])
        unfiltered = index.search("apples orchard", mode=mode, limit=5)
        assert all("/main/" in hit.path for hit in unfiltered)
        by_path = index.search("apples orchard", mode=mode, limit=5, path="side/*")
        by_ext = index.search("apples orchard", mode=mode, limit=5, ext="txt")
        by_name = index.search("apples orchard", mode=mode, limit=5, path=["fruit1.*", "fruit2.*"])
    assert sorted(os.path.basename(h.path) for h in by_path) == ["fruit0.txt", "fruit1.txt", "fruit2.txt"]
    assert sorted(os.path.basename(h.path) for h in by_ext) == ["fruit0.txt", "fruit1.txt", "fruit2.txt"]
    assert sorted(os.path.basename(h.path) for h in by_name) == ["fruit1.txt", "fruit2.txt"]


def test_date_filters(tmp_path, location, crowded, fake):
    old = crowded / "side" / "fruit0.txt"
    stamp = time.mktime((2020, 6, 1, 12, 0, 0, 0, 0, -1))
    os.utime(old, (stamp, stamp))
    with Index.open(location, embedder=fake) as index:
        index.add([crowded])
        before = index.search("apples", before="2021-01-01", limit=50)
        after = index.search("apples", after="2021-01-01", limit=50, per_file=1)
        with pytest.raises(SemsearchError, match="YYYY-MM-DD"):
            index.search("apples", after="last tuesday")
    assert [os.path.basename(h.path) for h in before] == ["fruit0.txt"]
    assert len(after) == 42 and all(not h.path.endswith("fruit0.txt") for h in after)


def test_snippets_are_worked_out_when_first_read(tmp_path, location, library, fake, monkeypatch):
    from semsearch.text import snippets

    calls = []
    real = snippets.best_snippet
    monkeypatch.setattr(snippets, "best_snippet", lambda text, query, **options: calls.append(query) or real(text, query, **options))
    with Index.open(location, embedder=fake) as index:
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


def test_words_with_combining_marks_are_whole_keywords(tmp_path, location, fake):
    # Devanagari vowel signs are combining marks: cut at them, "दिल्ली" (Delhi) became
    # "द", "ल", "ल", which "दिल" (heart) holds too.
    assert query_terms("नई दिल्ली?") == ["नई", "दिल्ली"]
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["delhi", "heart"], ["नई दिल्ली भारत की राजधानी है।", "मेरा दिल खुश है।"])
        hits = index.search("दिल्ली", mode="keyword")
    assert [hit.path for hit in hits] == ["delhi"]
    assert [hits[0].text[a:b] for a, b in hits[0].highlights] == ["दिल्ली"]


@pytest.mark.parametrize("mode", MODES)
def test_one_long_document_does_not_hide_the_others_under_the_per_file_cap(tmp_path, location, fake, mode):
    book = "\n\n".join(f"Zebras zebras zebras graze on the plain, paragraph {i}. " * 20 for i in range(400))
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["book"], [book])
        index.add_texts([f"note{i}" for i in range(5)], [f"Note {i} on animals: one is a zebra, plus lions." for i in range(5)])
        assert index.status().chunks > 300
        hits = index.search("zebras graze", mode=mode, limit=5, per_file=1)
    assert len(hits) == 5 and len({hit.path for hit in hits}) == 5


def test_a_folder_name_pattern_takes_the_files_in_folders_of_that_name(tmp_path, location, crowded, fake):
    (crowded / "main" / "side").mkdir()
    (crowded / "main" / "side" / "deep.md").write_text("Apples in a folder called side, deeper down.")
    with Index.open(location, embedder=fake) as index:
        index.add([crowded])
        found = {os.path.relpath(hit.path, crowded) for hit in index.search("apples", limit=50, path="side/", per_file=1)}
        assert found == {"side/fruit0.txt", "side/fruit1.txt", "side/fruit2.txt", "main/side/deep.md"}
        assert index.search("apples", path="crowded/") == [], "only folders below the indexed one count"


def test_arabic_matches_with_or_without_its_vowel_marks(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["pointed", "plain"], ["الكِتَابُ عَلَى الطَّاوِلَةِ", "ذهبت إلى المدرسة صباحا"])
        assert [hit.path for hit in index.search("الكتاب", mode="keyword")] == ["pointed"]
        assert [hit.path for hit in index.search("المَدْرَسَة", mode="keyword")] == ["plain"]


def test_path_patterns_as_in_gitignore(tmp_path, location, crowded, fake, monkeypatch):
    with Index.open(location, embedder=fake) as index:
        index.add([crowded])
        monkeypatch.chdir(crowded)
        for pattern in ("side", "./side/*", "fruit1.txt", "./side/"):
            found = {os.path.relpath(hit.path, crowded) for hit in index.search("apples", limit=50, path=pattern, per_file=1)}
            assert found and all(path.startswith("side/") for path in found), pattern


def test_a_query_longer_than_the_model_takes_is_cut_for_it_and_said_so(location, fake):
    class Limited(FakeEmbedder):
        max_tokens = 64

        def count_tokens(self, text):
            return len(text.split()) + 2

    model = Limited()
    filler = " ".join(f"filler{i % 300}" for i in range(16_000))  # a pasted page, ~150 KB
    with Index.open(location, embedder=model) as index:
        index.add_texts(["far", "near"], ["The quokka smiles at visitors.", "Filler words everywhere: filler1 filler2."])
        results = index.search(filler + " quokka", limit=5)
        assert all(len(query.split()) + 2 <= 64 - 8 for query in model.queries), "the model saw no more than it takes"
        assert results.notes and "keyword search used all of it" in results.notes[0]
        # The rare word at the very end lies beyond the cut: only keyword search saw it.
        assert "far" in [hit.path for hit in index.search(filler + " quokka", mode="keyword", limit=5)]
        assert index.search("quokka").notes == []


def test_a_hit_packing_several_sections_is_labelled_and_shown_by_the_one_that_answers(tmp_path, location, fake):
    folder = tmp_path / "pricing"
    folder.mkdir()
    # Two small sections: one chunk holds both, labelled by the first until the search says
    # which answers. The query's rare word is in the first; its meaning (to the fake
    # embedder, its repeated words) is the second's.
    (folder / "pricing.md").write_text(
        "# Pricing\n\n## Paying yearly\n\nA yearly subscription costs less than twelve months.\n\n"
        "## Good causes\n\nCats cats cats: shelters for cats get the cat plan for free.\n"
    )
    with Index.open(location, embedder=fake) as index:
        index.add([folder])
        [hit] = index.search("subscription cats cats cats cat", mode="dense", limit=1)
        assert hit.section == "Pricing › Good causes" and hit.snippet.startswith("Cats cats cats")
        assert hit.to_dict()["section"] == "Pricing › Good causes"
        # Without a query vector the label follows the snippet, wherever keywords put it.
        [hit] = index.search("yearly subscription", mode="keyword", limit=1)
        assert hit.section == "Pricing › Paying yearly" and "subscription" in hit.snippet
        assert index.check().problems == []
        # The parts' vectors belong to the index like the chunks': kept while used.
        index.add([folder], force=True)
        assert index.check().problems == [] and index.check().notes == []
