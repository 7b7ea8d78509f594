"""The API fuzzed from its own OpenAPI description with schemathesis: whatever the
parameters, no server error, and every answer fits the description (status, content type,
schema). Bounded to about 50 examples an operation, so it takes seconds."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from semsearch import Index
from tests.apps.http.conftest import serving
from tests.conftest import FakeEmbedder


class LengthReranker:
    """Scores a passage by its length: a rule, so that rerank=true has a reranker to call."""

    model_id = "length"

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        return [min(len(document) / 1000, 1.0) for document in documents]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    docs = root / "docs"
    (docs / "pets").mkdir(parents=True)
    (docs / "pets" / "cats.md").write_text("# Cats\n\nCats purr when content.\n\n## Feeding\n\nKittens eat often.\n")
    (docs / "dogs.txt").write_text("Dogs need a walk every morning.\nThey bark at strangers.\n")
    (docs / "travel.html").write_text("<html><head><title>Travel</title></head><body><h1>Trains</h1><p>Night trains leave at nine.</p></body></html>")
    with Index.open(root / "ix", embedder=FakeEmbedder(), reranker=LengthReranker()) as index:
        index.add([docs])
        index.add_texts(["memo-1"], ["A memo about budgets.\nSecond line.\n"])
        with serving(index, allow_write=True, max_query_chars=200) as served:
            yield served


def test_the_api_keeps_to_its_description(fuzzed_server):
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.label for operation in operations} == {
        "GET /api/search", "GET /api/status", "GET /api/passage/{chunk_id}", "GET /api/document", "POST /api/index"
    }
    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            # A document's end line before its start is valid for each parameter alone, refused together (400).
            crossed = case.operation.label == "GET /api/document" and (case.query or {}).get("end", 2**63) < (case.query or {}).get("start", 1)
            case.call_and_validate(excluded_checks=[positive_data_acceptance] if crossed else None)

        fuzz()
