"""The JSON API over a real server: the library's objects, every search option, errors."""

from __future__ import annotations

import json
import os

import pytest

from semsearch import Index
from semsearch.apps.http.openapi import DOCUMENT, PASSAGE, SEARCH_RESULT, STATUS
from tests.apps.http.conftest import serving


def _library(index, query, **options):
    return json.loads(json.dumps([hit.to_dict() for hit in index.search(query, **options)]))


def test_search_returns_what_search_json_prints(served):
    response = served.get("/api/search", params={"q": "cats purr"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["query"] == "cats purr" and body["mode"] == "hybrid" and body["notes"] == []
    assert body["results"] == _library(served.index, "cats purr")
    assert body["results"][0]["path"].endswith("cats.md")


@pytest.mark.parametrize(
    ("params", "options"),
    [
        ({"mode": "keyword"}, {"mode": "keyword"}),
        ({"mode": "dense", "limit": "2"}, {"mode": "dense", "limit": 2}),
        ({"per_file": "0"}, {"per_file": None}),
        ({"per_file": "1"}, {"per_file": 1}),
        ({"path": ["pets/*"]}, {"path": ["pets/*"]}),
        ({"path": ["*.txt", "*.rst"]}, {"path": ["*.txt", "*.rst"]}),
        ({"ext": "md,txt"}, {"ext": ["md", "txt"]}),
        ({"ext": ["md", "rst"]}, {"ext": ["md", "rst"]}),
        ({"after": "2000-01-01"}, {"after": "2000-01-01"}),
        ({"before": "2000-01-01"}, {"before": "2000-01-01"}),
        ({"explain": "true"}, {"explain": True}),
    ],
)
def test_search_options_are_those_of_the_library(served, params, options):
    response = served.get("/api/search", params={"q": "cats food walk garden", **params})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == _library(served.index, "cats food walk garden", **options)


def test_filters_change_the_results(served):
    everything = served.get("/api/search", params={"q": "cats dogs", "per_file": "0"}).json()["results"]
    text_only = served.get("/api/search", params={"q": "cats dogs", "ext": "txt"}).json()["results"]
    assert {hit["path"].rsplit(".", 1)[1] for hit in everything} > {"txt"}
    assert text_only and {hit["path"].rsplit(".", 1)[1] for hit in text_only} == {"txt"}
    assert served.get("/api/search", params={"q": "cats", "before": "2000-01-01"}).json()["results"] == []
    explained = served.get("/api/search", params={"q": "cats", "explain": "1"}).json()["results"]
    assert explained[0]["explain"] and "dense" in json.dumps(explained[0]["explain"])


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({}, "missing_parameter", "The parameter q is required. Say what you are looking for."),
        ({"q": "  "}, "empty_query", "The query is empty: say what you are looking for."),
        ({"q": "x", "mode": "fuzzy"}, "unknown_mode", "Unknown search mode 'fuzzy': use one of hybrid, dense, keyword."),
        ({"q": "x", "limit": "ten"}, "invalid_parameter", "limit must be a whole number from 1 to 10,000, not 'ten'."),
        ({"q": "x", "limit": "0"}, "invalid_parameter", "limit must be a whole number from 1 to 10,000, not '0'."),
        ({"q": "x", "limit": "10001"}, "invalid_parameter", "limit must be a whole number from 1 to 10,000, not '10001'."),
        ({"q": "x", "per_file": "-1"}, "invalid_parameter", "per_file must be a whole number from 0 to 10,000, not '-1'."),
        ({"q": "x", "explain": "maybe"}, "invalid_parameter", "explain must be true or false, not 'maybe'."),
        ({"q": "x", "after": "last tuesday"}, "bad_date", "after='last tuesday' is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM)."),
        ({"q": ["a", "b"]}, "repeated_parameter", "Give q once, not 2 times."),
    ],
)
def test_bad_search_parameters_get_400_with_the_reason(served, params, code, message):
    response = served.get("/api/search", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"] == message


def test_status(served, docs):
    body = served.get("/api/status").json()
    assert body["documents"] == served.index.status().documents == 4
    assert body["roots"] == [str(docs.resolve())]
    assert body["model"] == "fake" and body["last_indexed"].endswith("Z")
    assert body["server"] == {"version": body["server"]["version"], "read_only": True, "editor_url": "file://{path}"}


def test_passage_in_context(served):
    hit = served.get("/api/search", params={"q": "kittens wet food"}).json()["results"][0]
    response = served.get(f"/api/passage/{hit['chunk_id']}", params={"context": "1"})
    assert response.status_code == 200
    body = response.json()
    assert body == json.loads(json.dumps(served.index.passage(hit["chunk_id"], context=1).to_dict()))
    assert [line["number"] for line in body["lines"] if line["hit"]] == list(range(hit["start_line"], hit["end_line"] + 1))


@pytest.mark.parametrize("chunk", ["999999", "abc", "-1", "1e3", "99999999999999999999999"])
def test_passage_not_in_the_index_is_404(served, chunk):
    response = served.get(f"/api/passage/{chunk}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "chunk_not_found"


def test_passage_context_is_bounded(served):
    response = served.get("/api/passage/1", params={"context": "500"})
    assert response.status_code == 400 and "context must be a whole number from 0 to 200" in response.json()["error"]["message"]


def test_document_lines(served, docs):
    path = str((docs / "pets" / "dogs.txt").resolve())
    body = served.get("/api/document", params={"path": path, "start": "2", "end": "2"}).json()
    assert body["lines"] == [{"number": 2, "text": "They bark at strangers.", "hit": False}]
    assert body["total_lines"] == 3 and body["path"] == path
    relative = served.get("/api/document", params={"path": "pets/dogs.txt"}).json()
    assert [line["text"] for line in relative["lines"]][:2] == ["Dogs need a walk every morning and evening.", "They bark at strangers."]
    wrong = served.get("/api/document", params={"path": path, "start": "3", "end": "1"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_range"
    missing = served.get("/api/document")
    assert missing.status_code == 400 and missing.json()["error"]["message"] == "The parameter path is required."


def test_unknown_addresses_and_methods_get_json_errors(served):
    response = served.get("/api/nothing")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = served.post("/api/search", json={"q": "cats"})
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_openapi_describes_the_objects_the_library_gives(served):
    description = served.get("/openapi.json").json()
    assert description["openapi"].startswith("3.")
    assert set(description["paths"]) == {"/api/search", "/api/status", "/api/passage/{chunk_id}", "/api/document", "/api/index"}
    hit = served.index.search("cats")[0]
    assert set(SEARCH_RESULT["properties"]) == set(hit.to_dict())
    assert set(PASSAGE["properties"]) == set(served.index.passage(hit.chunk_id).to_dict())
    assert set(DOCUMENT["properties"]) == set(served.index.document(hit.path).to_dict())
    assert set(STATUS["properties"]) == set(served.index.status().to_dict()) | {"server"}
    search = description["paths"]["/api/search"]["get"]["parameters"]
    assert {parameter["name"] for parameter in search} == {"q", "mode", "limit", "per_file", "path", "ext", "after", "before", "explain", "rerank"}


def test_the_page_and_its_files_are_served(served):
    page = served.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert served.get(f"/static/{name}").status_code == 200
    assert served.get("/static/../settings.py").status_code == 404


def test_the_page_files_ship_in_the_package():
    from importlib import resources

    static = resources.files("semsearch.apps.http").joinpath("static")
    assert {entry.name for entry in static.iterdir()} >= {"index.html", "app.js", "style.css"}
    assert "http" not in static.joinpath("index.html").read_text().replace("http-equiv", "")  # no CDN
    pyproject = open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "pyproject.toml")).read()
    assert '"apps/http/static/*"' in pyproject  # in the wheel too


def test_search_reranks_when_asked_and_says_so(tmp_path, docs, fake):
    class ByWord:
        """Puts passages that mention strangers first: the final order must follow it."""

        model_id = "by-word"

        def rerank(self, query, documents):
            return [1.0 if "strangers" in document else 0.0 for document in documents]

    with Index.open(tmp_path / "rerank", embedder=fake, reranker=ByWord()) as index:
        index.add([docs])
        with serving(index) as served:
            # A reranker given to the index reranks unless told not to.
            plain = served.get("/api/search", params={"q": "cats purr", "per_file": 0, "rerank": "false"}).json()["results"]
            assert not plain[0]["path"].endswith("dogs.txt") and plain[0]["reranked"] is not True
            answer = served.get("/api/search", params={"q": "cats purr", "per_file": 0, "rerank": "true"}).json()
            assert answer["results"][0]["path"].endswith("dogs.txt")
            assert all(hit["reranked"] is True for hit in answer["results"])
            assert served.get("/api/search", params={"q": "cats", "rerank": "maybe"}).status_code == 400
