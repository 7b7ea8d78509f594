"""The library: indexing folders, searching, the model as a property of the index."""

from __future__ import annotations

import datetime
import os
import time

import numpy as np
import pytest

import semsearch
from semsearch import Index
from semsearch.errors import IndexNotFoundError, ModelMismatchError, SemsearchError
from tests.conftest import FakeEmbedder


def test_add_and_search_finds_the_right_document(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        stats = index.add([docs])
        hits = index.search("what do kittens eat", limit=3)
    assert stats.new == 4
    assert hits[0].path == str(docs / "pets" / "cats.md")
    assert "kittens" in hits[0].text
    assert hits[0].score > hits[-1].score or len(hits) == 1


def test_skips_binaries_unsupported_hidden_and_dependency_folders(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        stats = index.add([docs])
        indexed = {os.path.basename(hit.path) for hit in index.search("cats", limit=20, per_file=0)}
    assert stats.skipped_by_reason == {"binary file": 1, "unsupported file type": 1}
    assert "secret.txt" not in indexed and "lib.js" not in indexed
    assert not any("hidden cats" in text for text in fake.embedded)


def test_html_is_indexed_as_visible_text(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        hit = index.search("night trains vienna", limit=1)[0]
    assert hit.path.endswith("travel.html")
    assert "Night trains to Vienna" in hit.text
    assert "secret" not in hit.text and "menu" not in hit.text and "p{}" not in hit.text
    assert hit.title == "Travel"


def test_result_lines_point_at_the_passage(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        hit = index.search("pruning roses spring", limit=1)[0]
    lines = (docs / "garden.rst").read_text().splitlines()
    assert "Cut roses back" in "\n".join(lines[hit.start_line - 1 : hit.end_line])
    # Small sections share one chunk; the hit is labelled with the one that answers.
    assert hit.section == "Garden › Pruning" and hit.snippet == "Cut roses back in early spring."
    source = (docs / "garden.rst").read_text()
    assert source[hit.start_char : hit.end_char] == hit.text


def test_results_match_brute_force_cosine(tmp_path, location, fake):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(7)
    words = [f"word{i}" for i in range(200)]
    for i in range(60):
        (folder / f"doc{i}.txt").write_text(" ".join(rng.choice(words, 12)))
    with Index.open(location, embedder=fake) as index:
        index.add([folder])
        hits = index.search("word3 word17 word42", limit=10, per_file=0, mode="dense")
    texts = [(folder / f"doc{i}.txt").read_text() for i in range(60)]
    matrix = np.stack([fake._vector(t) for t in texts])
    scores = matrix @ fake._vector("word3 word17 word42")
    expected = np.sort(scores)[::-1][:10]
    assert np.allclose([hit.score for hit in hits], expected, atol=1e-5)


def test_per_file_cap(tmp_path, location, fake):
    folder = tmp_path / "long"
    folder.mkdir()
    paragraphs = "\n\n".join(f"Paragraph {i} is about apples and pears. " * 30 for i in range(8))
    (folder / "fruit.txt").write_text(paragraphs)
    (folder / "other.txt").write_text("Pears grow on trees.")
    with Index.open(location, embedder=fake) as index:
        index.add([folder])
        assert index.status().chunks > 3
        capped = index.search("apples and pears", limit=5)
        uncapped = index.search("apples and pears", limit=5, per_file=0)
    assert sum(hit.path.endswith("fruit.txt") for hit in capped) == 2
    assert len(capped) == 3
    assert sum(hit.path.endswith("fruit.txt") for hit in uncapped) == 5


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_per_file_cap_takes_each_documents_best_chunks_in_order(tmp_path, location, fake, mode):
    # Rows are read a few at a time as the cap passes chunks over; the answer is the
    # uncapped order with each document's chunks past the cap left out.
    words = "apples pears plums cherries figs dates limes".split()
    texts = ["\n\n".join(f"Part {part} of {name}: {words[(n + part) % 7]} and {words[part % 7]} " * 25 for part in range(6))
             for n, name in enumerate("abcdefg")]
    with Index.open(location, embedder=fake) as index:
        index.add_texts(list("abcdefg"), texts)
        everything = index.search("apples and plums", limit=1000, per_file=0, mode=mode)
        for per_file, limit in ((1, 5), (1, 7), (2, 7), (3, 4)):
            taken: dict[str, int] = {}
            expected = []
            for hit in everything:
                taken[hit.path] = taken.get(hit.path, 0) + 1
                if taken[hit.path] <= per_file:
                    expected.append(hit.chunk_id)
            hits = index.search("apples and plums", limit=limit, per_file=per_file, mode=mode)
            assert [hit.chunk_id for hit in hits] == expected[:limit]


def test_model_is_recorded_and_search_uses_it(tmp_path, location, docs, fake_model):
    with Index.open(location, model="fake") as index:
        index.add([docs])
        assert index.created and index.model_reason == "--model"
    with Index.open(location) as index:
        assert index.model == "fake" and index.dimensions == 64
        assert index.search("kittens", limit=1)[0].path.endswith("cats.md")
    assert fake_model.queries == ["kittens"]


def test_adding_with_another_model_is_refused(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
    with pytest.raises(ModelMismatchError, match="built with model fake, not local"):
        Index.open(location, model="local")
    with pytest.raises(ModelMismatchError, match=r"rebuild=True"):  # the library's terms; the CLI names --rebuild
        Index.open(location, embedder=FakeEmbedder("other-model"))


def test_other_dimensions_from_the_same_model_id_are_refused(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        garden = index.add([docs / "garden.rst"]).chunks_added
        vectors = index.status().vectors
    with Index.open(location, embedder=FakeEmbedder(dimensions=32)) as index:
        with pytest.raises(ModelMismatchError, match="32-dimensional"):
            index.add([docs])
        # No vector of the wrong size is stored; documents written before the refusal wait
        # for vectors of the right size.
        status = index.status()
        assert (status.dimensions, status.vectors) == (64, vectors)
        assert status.waiting_chunks == status.chunks - garden
        assert index.check().ok


def test_default_model_without_a_token_is_local(tmp_path, location):
    with Index.open(location) as index:
        assert index.model == "local"
        assert index.model_reason == "no IONOS_API_TOKEN is set"
        assert index.dimensions == 384


@pytest.fixture
def endpoint(monkeypatch):
    from tests.openai_server import OpenAIServer

    with OpenAIServer(token="secret-token") as server:
        monkeypatch.setenv("SEMSEARCH_BASE_URL", server.url)
        yield server


def test_default_model_with_a_token_is_bge_m3(tmp_path, location, monkeypatch, endpoint):
    monkeypatch.setenv("IONOS_API_TOKEN", "secret-token")
    with Index.open(location) as index:
        assert index.model == "BAAI/bge-m3"
        assert index.model_reason == "IONOS_API_TOKEN is set"
    assert endpoint.texts == ["semsearch"], "a new index reaches its model before it is set up"


def test_semsearch_model_variable_and_dotenv(tmp_path, location, monkeypatch, endpoint):
    monkeypatch.setenv("IONOS_API_TOKEN", "secret-token")
    (tmp_path / "work" / ".env").write_text("SEMSEARCH_MODEL=BAAI/bge-large-en-v1.5\n")
    with Index.open(location) as index:
        assert index.model == "BAAI/bge-large-en-v1.5"
        assert index.model_reason == "SEMSEARCH_MODEL"


def test_a_new_index_is_not_made_for_a_model_that_cannot_be_reached(tmp_path, location, monkeypatch, endpoint):
    monkeypatch.setenv("IONOS_API_TOKEN", "wrong-token")
    with pytest.raises(semsearch.AuthenticationError):
        Index.open(location, model="BAAI/bge-m3")
    with pytest.raises(semsearch.ModelNotFoundError, match="did you mean 'local'"):
        Index.open(location, model="locl", api_key="")
    monkeypatch.setenv("IONOS_API_TOKEN", "secret-token")
    with pytest.raises(semsearch.ModelNotFoundError, match="acme/none"):
        Index.open(location, model="acme/none")
    with pytest.raises(IndexNotFoundError):
        Index.open(location, create=False)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFoundError, match="No index at .* Create one"):  # the CLI names `semsearch index FOLDER`
        Index.open(tmp_path / "nowhere", create=False)


def test_missing_path_is_a_clear_error(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        with pytest.raises(SemsearchError, match="no such file or folder"):
            index.add([tmp_path / "typo"])


def test_empty_query_is_refused(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        with pytest.raises(SemsearchError, match="empty"):
            index.search("   ")


def test_negative_limits_are_refused(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        with pytest.raises(SemsearchError, match="0 or more"):
            index.search("kittens", limit=-1)
        with pytest.raises(SemsearchError, match="0 or more"):
            index.search("kittens", per_file=-1)  # would skip every hit
        assert len(index.search("kittens", limit=3, per_file=0)) == 3


def test_empty_index_returns_no_results(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        assert index.search("anything") == []
        index.add_texts(["a"], ["Sailing boats need wind."])
        assert index.search("boats", mode="dense")[0].text == "Sailing boats need wind."
        assert index.search("boats", limit=0) == []
        index.remove(["a"])
        assert index.search("boats", mode="dense") == [] and fake.queries == ["boats", "boats"]


def test_one_index_holds_several_folders(tmp_path, location, docs, fake):
    other = tmp_path / "other"
    other.mkdir()
    (other / "boats.txt").write_text("Sailing boats need wind.")
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        index.add([other])
        status = index.status()
        assert status.roots == sorted([str(docs), str(other)])
        assert status.documents == 5
        assert index.search("sailing wind", limit=1)[0].path.endswith("boats.txt")
        assert index.search("kittens", limit=1)[0].path.endswith("cats.md")


def test_remove(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        assert index.remove([docs / "pets"]) == 2
        assert all("pets" not in hit.path for hit in index.search("cats kittens dogs", limit=10, per_file=0))
        assert index.status().documents == 2


def test_add_texts_records(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        stats = index.add_texts(["a", "b"], ["Kittens drink milk.", "Rockets fly to orbit."], [{"title": "Cats"}, None])
        hits = index.search("rockets orbit", limit=1)
        assert stats.new == 2
        assert hits[0].path == "b" and hits[0].metadata is None
        again = index.add_texts(["a"], ["Kittens drink milk."], [{"title": "Cats"}])
        assert again.unchanged == 1 and again.chunks_embedded == 0
        assert index.search("kittens milk", limit=1)[0].title == "Cats"


def test_add_texts_tells_new_changed_and_unchanged_records_apart(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["a", "b"], ["Kittens drink milk.", "Rockets fly to orbit."])
        embedded = len(fake.embedded)
        stats = index.add_texts(["a", "b", "c"], ["Kittens drink milk.", "Rockets fly to the moon.", "Glaciers carve valleys."])
        assert (stats.unchanged, stats.changed, stats.new) == (1, 1, 1)
        assert sorted(fake.embedded[embedded:]) == ["Glaciers carve valleys.", "Rockets fly to the moon."]
        assert index.search("rockets moon", limit=1)[0].path == "b"
        assert index.status().documents == 3 and index.check().problems == []


def test_an_open_index_sees_what_another_writer_committed(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as reader, Index.open(location, embedder=fake) as writer:
        writer.add([docs / "garden.rst"])
        assert reader.search("tomatoes", limit=1)[0].path.endswith("garden.rst")
        writer.add([docs / "pets"])
        assert reader.search("kittens", limit=1)[0].path.endswith("cats.md")


def test_embedder_protocol_is_exported(fake):
    assert isinstance(fake, semsearch.Embedder)


def test_add_texts_stores_changed_metadata_without_embedding_again(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["r1"], ["Cats purr softly."], [{"lang": "en", "status": "draft"}])
        stats = index.add_texts(["r1"], ["Cats purr softly."], [{"lang": "fr", "status": "published"}])
        assert (stats.changed, stats.chunks_embedded) == (1, 0)
        assert index.search("cats")[0].metadata == {"lang": "fr", "status": "published"}
        assert index.add_texts(["r1"], ["Cats purr softly."], [{"status": "published", "lang": "fr"}]).unchanged == 1


@pytest.mark.parametrize(
    ("texts", "metadata", "message"),
    [
        (["ok"] * 149 + [None], None, "ids and texts must be strings"),
        (["ok"] * 150, [None] * 149 + [{"when": datetime.date(2024, 1, 1)}], "JSON-serialisable"),
        (["ok"] * 150, [{"title": 42}] * 150, "title in metadata must be a string"),
        (["ok"] * 150, ["not a dict"] * 150, "metadata must be a dict"),
    ],
)
def test_add_texts_refuses_records_it_cannot_store_before_writing_any(tmp_path, location, fake, texts, metadata, message):
    with Index.open(location, embedder=fake) as index:
        with pytest.raises(SemsearchError, match=message):
            index.add_texts([f"r{i}" for i in range(150)], texts, metadata)
        assert index.status().documents == 0
        with pytest.raises(SemsearchError, match="lists"):
            index.add_texts("r1", "one text")


def test_searching_with_a_model_of_another_size_is_a_model_mismatch(tmp_path, location):
    with Index.open(location, embedder=FakeEmbedder("fake", 64)) as index:
        index.add_texts(["a"], ["Sailing boats need wind."])
    with Index.open(location, embedder=FakeEmbedder("fake", 32)) as index:
        with pytest.raises(ModelMismatchError, match="32-dimensional"):
            index.search("boats", mode="dense")
        assert [hit.path for hit in index.search("boats", mode="keyword")] == ["a"]


def test_arguments_of_the_wrong_kind_are_clear_errors(tmp_path, location, docs, fake):
    with pytest.raises(SemsearchError, match="Unknown option craete"):
        Index.open(location, embedder=fake, craete=False)
    if not isinstance(location, str):  # a database URL: nothing to look at
        assert not location.exists()
    with Index.open(location, embedder=fake) as index:
        assert index.add(str(docs)).new == 4, "one path given as a string is one path"
        for bad in ({"query": 5}, {"query": "cats", "limit": 2.5}, {"query": "cats", "per_file": "2"}):
            with pytest.raises(SemsearchError):
                index.search(**bad)
        assert index.remove(str(docs / "pets" / "cats.md")) == 1


def test_embedding_no_queries_gives_an_empty_matrix(fake_model):
    assert semsearch.embed([], model="fake", query=True).shape == (0, fake_model.dimensions)


def test_what_an_embedder_returns_is_checked(tmp_path):
    class Lists(FakeEmbedder):
        def embed_documents(self, texts):
            return super().embed_documents(texts).tolist()

    class Broken(FakeEmbedder):
        def embed_documents(self, texts):
            return super().embed_documents(texts) * np.nan

    with Index.open(tmp_path / "lists", embedder=Lists()) as index:
        assert index.add_texts(["a"], ["Sailing boats need wind."]).new == 1
        assert index.search("boats", mode="dense")[0].path == "a"
    with Index.open(tmp_path / "nan", embedder=Broken()) as index:
        with pytest.raises(semsearch.EmbeddingError, match="NaN"):
            index.add_texts(["a"], ["Sailing boats need wind."])
        status = index.status()
        assert (status.documents, status.vectors, status.waiting_chunks) == (1, 0, 1) and index.check().ok
        assert index.search("boats", mode="keyword")[0].path == "a"


def test_a_closed_index_says_so(tmp_path, location, fake):
    with Index.open(location, embedder=fake) as index:
        index.add_texts(["a"], ["Sailing boats need wind."])
    with pytest.raises(SemsearchError, match="closed"):
        index.search("boats")
    index.close()  # closing again is harmless


def test_an_index_without_documents_takes_the_model_asked_for(tmp_path, location, docs):
    class Failing(FakeEmbedder):
        def embed_documents(self, texts):
            raise semsearch.EmbeddingError("no token")

    with Index.open(location, embedder=Failing("remote-model", 32)) as index:
        with pytest.raises(semsearch.EmbeddingError):
            index.add([docs / "garden.rst"])
    with Index.open(location, embedder=FakeEmbedder("fake", 64)) as index:
        assert index.model == "fake" and "held nothing embedded with remote-model" in index.model_reason
        index.add_texts(["a"], ["Sailing boats need wind."])
    with pytest.raises(ModelMismatchError):
        Index.open(location, embedder=FakeEmbedder("remote-model", 32))


def test_records_waiting_for_their_first_vectors_keep_the_index_to_its_model(tmp_path, location):
    class Failing(FakeEmbedder):
        def embed_documents(self, texts):
            raise semsearch.EmbeddingError("no token")

    with Index.open(location, embedder=Failing("remote-model", 32)) as index:
        with pytest.raises(semsearch.EmbeddingError):
            index.add_texts(["a"], ["Sailing boats need wind."])
    # A record cannot be read again from anywhere: switching would lose it.
    with pytest.raises(ModelMismatchError):
        Index.open(location, embedder=FakeEmbedder("fake", 64))
    with Index.open(location, embedder=FakeEmbedder("remote-model", 32)) as index:
        assert index.add_texts(["a"], ["Sailing boats need wind."]).unchanged == 1
        assert index.embed_backlog().chunks_embedded == 0 and index.status().waiting_chunks == 0


def test_a_record_id_may_not_be_the_path_of_an_indexed_file(tmp_path, location, docs, fake):
    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        with pytest.raises(SemsearchError, match="path of an indexed file"):
            index.add_texts([str(docs / "pets" / "cats.md")], ["my own record about zebras"])
        assert "Cats purr" in index.search("cats purr", mode="keyword")[0].text


def test_an_object_that_is_not_an_embedder_is_a_clear_error(location):
    with pytest.raises(SemsearchError, match="lacks model_id, dimensions, embed_documents, embed_query"):
        Index.open(location, embedder=object())

    class HalfAnEmbedder:
        model_id, dimensions = "half", 8

        def embed_documents(self, texts):
            return np.zeros((len(texts), 8), np.float32)

    with pytest.raises(SemsearchError, match="lacks embed_query"):
        Index.open(location, embedder=HalfAnEmbedder())


def test_the_library_refuses_empty_texts_as_the_cli_does(fake_model):
    for texts in ("", "   ", ["cats", ""]):
        with pytest.raises(SemsearchError, match="empty"):
            semsearch.embed(texts, model="fake")
    with pytest.raises(SemsearchError, match="empty"):
        semsearch.similarity("", "x", model="fake")
    assert semsearch.similarity("cats purr", "cats purr", model="fake") == pytest.approx(1.0)


def test_texts_and_paths_that_are_not_utf8_are_refused_by_the_library(location, docs, fake):
    broken = os.fsdecode(b"caf\xe9")
    with Index.open(location, embedder=fake) as index:
        index.add([docs / "garden.rst"])
        for call in (
            lambda: index.search(broken),
            lambda: index.search("roses", path=[broken]),
            lambda: index.add([broken]),
            lambda: index.remove([broken]),
            lambda: index.add_texts(["r1"], [broken]),
        ):
            with pytest.raises(SemsearchError, match="UTF-8"):
                call()
        assert index.status().documents == 1


def test_a_limit_beyond_any_ranking_is_refused_and_extreme_dates_work(location, docs, fake):
    import datetime as dt

    from semsearch.search.query import MAX_RESULTS

    with Index.open(location, embedder=fake) as index:
        index.add([docs])
        with pytest.raises(SemsearchError, match="at most"):
            index.search("cats", limit=2**63 - 1)
        assert len(index.search("cats", limit=MAX_RESULTS, per_file=0)) > 0
        assert index.search("cats", after=dt.date(1, 1, 1), before="9999-12-31")
        assert index.search("cats", after="9999-12-31") == []


def test_library_errors_speak_in_library_terms_and_the_cli_in_its_own(tmp_path, location, docs, fake):
    from semsearch.apps.advice import message
    from semsearch.settings import ChunkSettings

    with Index.open(location, embedder=fake) as index:
        index.add([docs / "garden.rst"])
    caught = []
    for attempt in (
        lambda: Index.open(location, embedder=FakeEmbedder("hash-embedder-v1")),
        lambda: Index.open(location, embedder=fake, chunking=ChunkSettings(target_tokens=99)),
        lambda: Index.open(tmp_path / "nowhere", create=False),
    ):
        with pytest.raises(SemsearchError) as error:
            attempt()
        caught.append(error.value)
    with Index.open(location, embedder=FakeEmbedder(dimensions=32)) as index:
        with pytest.raises(ModelMismatchError) as error:
            index.add([docs])
        caught.append(error.value)
    for error in caught:
        assert error.code and error.hint, error
        assert "semsearch " not in str(error) and " --" not in str(error), str(error)
    assert [error.code for error in caught] == ["other_model", "other_chunking", "index_not_found", "other_dimensions"]
    assert "rebuild=True" in caught[0].hint and "rebuild" not in caught[3].hint, "a changed model is not fixed by rebuilding"
    assert "`semsearch index --rebuild --model hash-embedder-v1`" in message(caught[0])
    assert "`semsearch index FOLDER`" in message(caught[2])


def test_a_run_reports_its_last_steps_and_counts_them_in_its_time(location, fake, monkeypatch):
    from semsearch.settings import VectorSettings

    seen = []
    texts = [f"record {i} about topic{i % 7} and word{i}" for i in range(120)]
    with Index.open(location, embedder=fake, vectors=VectorSettings(approximate_above=50)) as index:
        started = time.monotonic()
        stats = index.add_texts([f"r{i}" for i in range(120)], texts, progress=seen.append)
        elapsed = time.monotonic() - started
        assert elapsed - 0.05 <= stats.seconds <= elapsed, "the whole run, its last steps included"
    steps = [event.step for event in seen if event.step]
    assert steps, "the steps after the documents are reported"
    assert all(event.done == event.total for event in seen if event.step)
