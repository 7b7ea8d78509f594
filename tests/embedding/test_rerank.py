"""RemoteReranker against a real loopback server, spoken to by the real openai client."""

from __future__ import annotations

import logging
import time

import pytest

from semsearch.embedding.remote.client import RemoteEmbedder
from semsearch.embedding.remote.rerank import RemoteReranker, _tokens
from semsearch.errors import AuthenticationError, EmbeddingError, ModelNotFoundError, ServiceError
from tests.openai_server import OpenAIServer, overlap_score

TOKEN = "rerank-test-token-91c4e2"
MODEL = "Qwen/Qwen3-VL-Reranker-8B"
DOCUMENTS = ["the weather is nice today", "cats purr and dogs bark", "dogs bark at night", "nothing here"]


@pytest.fixture
def server():
    with OpenAIServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def make():
    def make(url: str, model: str | None = MODEL, **options) -> RemoteReranker:
        settings = {"api_key": TOKEN, "rps": 1000.0, "burst": 1000, "backoff": 0.01, "timeout": 5.0, **options}
        return RemoteReranker(model, base_url=url, **settings)

    return make


def test_one_request_of_the_shape_every_rerank_server_takes(server, make):
    scores = make(server.url).rerank("dogs bark", DOCUMENTS)
    assert server.reranks == [{"model": MODEL, "query": "dogs bark", "documents": DOCUMENTS, "top_n": 4}]
    assert server.authorizations == [f"Bearer {TOKEN}"]
    # The server answers best first; the scores come back in the documents' order.
    assert scores == [overlap_score("dogs bark", text) for text in DOCUMENTS] == [0.0, 1.0, 1.0, 0.0]


def test_the_model_is_read_from_the_endpoints_list_once(server, make):
    server.rerank_models = ["acme/small-reranker", MODEL]
    reranker = make(server.url, None)
    reranker.rerank("dogs", DOCUMENTS)
    reranker.rerank("cats", DOCUMENTS)
    assert reranker.model_id == "acme/small-reranker"
    assert [body["model"] for body in server.reranks] == ["acme/small-reranker"] * 2
    assert server.requests == 3  # one model list, two reranks
    assert reranker.list_models() == ["acme/small-reranker", MODEL]


def test_semsearch_rerank_model_is_used_without_listing(server, make, monkeypatch):
    server.rerank_models = ["acme/other-reranker", MODEL]
    monkeypatch.setenv("SEMSEARCH_RERANK_MODEL", "acme/other-reranker")
    make(server.url, None).rerank("dogs", DOCUMENTS)
    assert server.requests == 1 and server.reranks[0]["model"] == "acme/other-reranker"


def test_long_passages_are_cut_to_the_models_input_limit(server, make):
    long = " ".join(f"word{i}" for i in range(3000))
    server.rerank_max_chars = 2000
    scores = make(server.url, max_tokens=256).rerank("word1 word2", ["short one", long])
    sent = server.reranks[0]["documents"]
    assert sent[0] == "short one" and long.startswith(sent[1]) and len(sent[1]) < len(long)
    assert _tokens("word1 word2") + _tokens(sent[1]) <= 256
    assert scores[1] == 1.0


def test_no_documents_means_no_request(server, make):
    assert make(server.url).rerank("anything", []) == []
    assert server.requests == 0


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_token_is_the_embedding_clients_error_and_not_retried(server, make, status):
    server.rerank_script = [status]
    with pytest.raises(AuthenticationError) as caught:
        make(server.url).rerank("dogs", DOCUMENTS)
    assert "IONOS_API_TOKEN" in str(caught.value) and "missing or wrong" in str(caught.value)
    assert server.requests == 1 and TOKEN not in str(caught.value)


def test_no_token_fails_before_any_request(server, make):
    with pytest.raises(AuthenticationError, match="IONOS_API_TOKEN"):
        make(server.url, api_key="").rerank("dogs", DOCUMENTS)
    assert server.requests == 0


def test_a_rerank_model_the_endpoint_does_not_serve(server, make):
    with pytest.raises(ModelNotFoundError) as caught:
        make(server.url, "acme/no-such-reranker").rerank("dogs", DOCUMENTS)
    assert "acme/no-such-reranker" in str(caught.value) and "SEMSEARCH_RERANK_MODEL" in str(caught.value)
    assert server.requests == 1


def test_an_endpoint_without_a_rerank_route_is_a_service_error(server, make):
    server.rerank_script = [404]  # "Scripted failure 404.": no model named, a missing route
    with pytest.raises(ServiceError) as caught:
        make(server.url).rerank("dogs", DOCUMENTS)
    assert caught.value.code == "no_reranker" and "no rerank endpoint" in str(caught.value)


def test_an_endpoint_listing_no_rerank_model(server, make):
    server.rerank_models = []
    with pytest.raises(ServiceError) as caught:
        make(server.url, None).rerank("dogs", DOCUMENTS)
    assert caught.value.code == "no_reranker" and "SEMSEARCH_RERANK_MODEL" in str(caught.value)


def test_429_with_retry_after_is_waited_out(server, make, caplog):
    caplog.set_level(logging.WARNING, logger="semsearch")
    server.rerank_script = [429]
    server.retry_after = 0.5
    reranker = make(server.url)
    started = time.monotonic()
    assert reranker.rerank("dogs bark", DOCUMENTS)[1] == 1.0
    assert time.monotonic() - started >= 0.5
    assert (reranker.usage.requests, reranker.usage.retries, reranker.usage.rate_limited) == (2, 1, 1)
    assert "Rerank request to" in caplog.text and "HTTP 429, over the rate limit" in caplog.text


def test_the_rate_limit_is_the_embedding_clients(server, make, tmp_path):
    reranker = make(server.url)
    embedder = RemoteEmbedder("BAAI/bge-m3", base_url=server.url, api_key=TOKEN, state_path=tmp_path / "e.json")
    # One bucket per endpoint: IONOS counts embedding and rerank requests against one limit.
    assert reranker._transport._bucket is embedder._transport._bucket


def test_a_429_to_the_reranker_holds_off_the_embedder_too(server, tmp_path):
    server.rerank_script = [429]
    server.retry_after = 0.6
    options = {"base_url": server.url, "api_key": TOKEN, "rps": 1000.0, "burst": 1000}
    reranker = RemoteReranker(MODEL, **options)
    embedder = RemoteEmbedder("BAAI/bge-m3", state_path=tmp_path / "e.json", **options)
    embedder.embed_query("warm up")
    import threading

    rerank = threading.Thread(target=reranker.rerank, args=("dogs", DOCUMENTS))
    rerank.start()
    time.sleep(0.2)  # the 429 has come back and paused the endpoint's bucket
    started = time.monotonic()
    embedder.embed_query("waits its turn")
    rerank.join()
    assert time.monotonic() - started >= 0.3


def test_persistent_5xx_gives_up_as_a_service_error(server, make):
    server.rerank_script = [500, 502, 503]
    with pytest.raises(ServiceError, match=r"kept failing \(HTTP 503\).*\(3 attempts\)"):
        make(server.url, max_retries=2).rerank("dogs", DOCUMENTS)


def test_a_slow_reranker_stops_at_its_time_budget(server, make):
    server.rerank_latency = 3.0
    reranker = make(server.url, budget=0.5)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        reranker.rerank("dogs", DOCUMENTS)
    assert time.monotonic() - started < 1.5
    assert caught.value.code == "over_time" and "time allowed" in str(caught.value)


def test_retries_stop_at_the_time_budget(server, make):
    server.rerank_script = [500] * 50
    with pytest.raises(ServiceError) as caught:
        make(server.url, budget=0.3, backoff=0.2).rerank("dogs", DOCUMENTS)
    assert caught.value.code == "over_time" and "the last: HTTP 500" in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [{"results": [{"index": 0, "relevance_score": 0.5}]}, {"results": [{"index": 9, "relevance_score": 1}] * 4},
     {"results": "nope"}, {"results": [{"index": 0, "relevance_score": "high"}] * 4}],
)
def test_a_malformed_answer_is_a_service_error(server, make, monkeypatch, answer):
    from semsearch.embedding.remote import rerank

    with pytest.raises(ServiceError, match="malformed rerank answer"):
        rerank._scores(answer, 4, server.url, MODEL)


def test_scores_from_a_bare_list_with_score_as_tei_sends_them():
    from semsearch.embedding.remote.rerank import _scores

    assert _scores([{"index": 1, "score": -2.0}, {"index": 0, "score": 3.5}], 2, "u", "m") == [3.5, -2.0]


def test_a_refused_request_keeps_the_services_reason(server, make):
    server.rerank_script = [400]
    with pytest.raises(EmbeddingError) as caught:
        make(server.url).rerank("dogs", DOCUMENTS)
    assert caught.value.code == "refused" and "Scripted failure 400" in str(caught.value)


def test_a_bad_rerank_budget_setting_is_refused(server, monkeypatch):
    from semsearch.errors import ConfigError

    monkeypatch.setenv("SEMSEARCH_RERANK_TIMEOUT", "never")
    with pytest.raises(ConfigError, match="SEMSEARCH_RERANK_TIMEOUT"):
        RemoteReranker(MODEL, base_url=server.url, api_key=TOKEN)


def test_the_transport_posts_json_with_or_without_a_deadline(server):
    from semsearch.embedding.remote.transport import Transport

    transport = Transport("rerank service", base_url=server.url, api_key=TOKEN, rps=1000.0, burst=1000)
    body = {"model": MODEL, "query": "dogs", "documents": ["dogs bark"], "top_n": 1}
    assert transport.post("/rerank", body, model=MODEL, what="rerank request")["results"][0]["relevance_score"] == 1.0
    answer = transport.post("/rerank", body, model=MODEL, what="rerank request", deadline=time.monotonic() + 5)
    assert answer["results"] == [{"index": 0, "relevance_score": 1.0}]
    assert transport.usage.requests == 2
