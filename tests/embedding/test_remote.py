"""RemoteEmbedder against a real loopback server, spoken to by the real openai client."""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from semsearch.embedding.catalogue import BGE_QUERY_INSTRUCTION
from semsearch.embedding.local import xlmr_token_count
from semsearch.embedding.remote.client import RemoteEmbedder
from semsearch.embedding.remote.ratelimit import TokenBucket
from semsearch.errors import (
    AuthenticationError,
    ConfigError,
    EmbeddingError,
    ModelNotFoundError,
    RequestTooLargeError,
    ServiceError,
)
from tests.conftest import REPO
from tests.openai_server import OpenAIServer, SilentServer, token_count

TOKEN = "ionos-test-token-7f3a9c1e5b"
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def sample_texts(count: int) -> list[str]:
    return [f"text {i} {WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]} number{i}" for i in range(count)]


@pytest.fixture
def server():
    with OpenAIServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def state_path(tmp_path) -> Path:
    return tmp_path / "endpoints.json"


@pytest.fixture
def make(state_path):
    """A RemoteEmbedder for a URL with fast test settings (no pacing, tiny backoff)."""

    def make(url: str, model: str = "BAAI/bge-m3", **options) -> RemoteEmbedder:
        settings = {
            "api_key": TOKEN, "state_path": state_path, "rps": 1000.0, "burst": 1000,
            "backoff": 0.01, "timeout": 5.0, **options,
        }
        return RemoteEmbedder(model, base_url=url, **settings)

    return make


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- success ------------------------------------------------------------------------------


def test_embeddings_match_the_servers_vectors(server, make):
    texts = sample_texts(5)
    vectors = make(server.url).embed_documents(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (5, 1024)
    assert np.array_equal(vectors, np.stack([server.vector(t) for t in texts]))
    assert server.formats == ["base64"]
    assert server.authorizations == [f"Bearer {TOKEN}"]


def test_query_gets_the_models_instruction(server, make):
    embedder = make(server.url, "BAAI/bge-large-en-v1.5")
    vector = embedder.embed_query("where do cats sleep")
    assert vector.shape == (1024,)
    assert server.texts == [BGE_QUERY_INSTRUCTION + "where do cats sleep"]
    assert np.array_equal(vector, server.vector(server.texts[0], "BAAI/bge-large-en-v1.5"))
    make(server.url).embed_query("where do cats sleep")
    assert server.texts[-1] == "where do cats sleep"  # bge-m3 takes queries as they are


def test_results_keep_input_order_whatever_the_completion_order(server, make):
    server.latency_jitter = 0.05
    texts = sample_texts(40)
    vectors = make(server.url, batch_size=3, concurrency=4).embed_documents(texts)
    assert np.array_equal(vectors, np.stack([server.vector(t) for t in texts]))
    assert 1 < server.max_in_flight <= 4
    assert sorted(server.texts) == sorted(texts)  # nothing embedded twice


def test_one_embedder_used_from_several_threads(server, make):
    server.latency_jitter = 0.02
    embedder = make(server.url, batch_size=4, concurrency=2)
    groups = [sample_texts(30)[i::3] for i in range(3)]
    results: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, embedder.embed_documents(groups[i])))
        for i in range(3)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for i, group in enumerate(groups):
        assert np.array_equal(results[i], np.stack([server.vector(t) for t in group]))
    assert embedder.usage.inputs == 30
    assert embedder.usage.requests == server.embedding_requests
    assert 0 < embedder.usage.seconds <= elapsed  # overlapping calls are not counted twice


def test_no_texts_means_no_request(server, make):
    assert make(server.url).embed_documents([]).shape == (0, 1024)
    assert server.requests == 0


def test_list_models(server, make):
    assert make(server.url).list_models() == [*server.models, *server.rerank_models]


def test_defaults_come_from_the_environment_and_dotenv(server, monkeypatch, tmp_path):
    (Path.cwd() / ".env").write_text(f"IONOS_API_TOKEN={TOKEN}\nSEMSEARCH_BASE_URL={server.url}/\n")
    monkeypatch.setenv("SEMSEARCH_RPS", "7")
    embedder = RemoteEmbedder("BAAI/bge-m3", state_path=tmp_path / "state.json")
    assert (embedder.base_url, embedder.rps, embedder.burst) == (server.url, 7.0, 10)
    # Enough requests in flight to keep 7 a second going while each takes 2 s.
    assert (embedder.concurrency, embedder.batch_size, embedder.max_retries) == (14, 256, 8)
    embedder.embed_documents(["hello"])
    assert server.authorizations == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize(("rps", "environment", "concurrency"), [(5, None, 10), (1, None, 4), (100, None, 32), (5, "3", 3)])
def test_concurrency_fits_the_rate_limit(tmp_path, monkeypatch, rps, environment, concurrency):
    if environment:
        monkeypatch.setenv("SEMSEARCH_CONCURRENCY", environment)
    embedder = RemoteEmbedder("BAAI/bge-m3", api_key="x", rps=rps, state_path=tmp_path / "state.json")
    assert embedder.concurrency == concurrency


def test_slow_answers_do_not_slow_the_rate(server, make):
    # Each answer takes 0.4 s; at 20 requests a second that needs 8 in flight, not 4.
    server.latency = 0.4
    make(server.url).embed_documents(["warm up"])  # import openai outside the timing
    server.reset_counters()
    embedder = make(server.url, rps=20.0, burst=2, batch_size=1)
    started = time.monotonic()
    embedder.embed_documents(sample_texts(40))
    elapsed = time.monotonic() - started
    assert server.max_in_flight >= 8
    assert elapsed < 0.4 + (40 - 1) / 20 * 1.5, f"{elapsed:.2f} s for 40 requests at 20/s"


def test_importing_the_module_does_not_import_openai():
    code = "import sys, semsearch.embedding.remote.client; print('openai' in sys.modules, 'numpy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=REPO,
    )
    assert result.stdout.split() == ["False", "False"]


# -- retries ------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(server, make):
    server.script = [429]
    embedder = make(server.url)
    started = time.monotonic()
    vectors = embedder.embed_documents(["a cat", "a dog"])
    assert time.monotonic() - started >= 1.0
    assert np.array_equal(vectors[1], server.vector("a dog"))
    assert (embedder.usage.rate_limited, embedder.usage.retries, embedder.usage.requests) == (1, 1, 2)


def test_429_pauses_every_thread_not_just_the_one_refused(server, make):
    server.script = [429]
    server.latency = 0.05
    make(server.url, batch_size=1, concurrency=4).embed_documents(sample_texts(24))
    refused_at = server.request_times[0]
    during_pause = [t for t in server.request_times if refused_at + 0.2 < t < refused_at + 0.95]
    assert during_pause == []
    assert server.inputs == 24


def test_5xx_then_success_is_retried_and_counted(server, make):
    server.script = [500, 503]
    embedder = make(server.url)
    vectors = embedder.embed_documents(["x marks the spot"])
    assert np.array_equal(vectors[0], server.vector("x marks the spot"))
    assert (embedder.usage.retries, embedder.usage.requests, server.embedding_requests) == (2, 3, 3)


def test_persistent_5xx_raises_service_error_naming_the_status_and_attempts(server, make):
    server.error_rate = 1.0
    with pytest.raises(ServiceError) as caught:
        make(server.url, max_retries=2).embed_documents(["doomed"])
    message = str(caught.value)
    assert "HTTP 500" in message and "BAAI/bge-m3" in message and server.url in message and "(3 attempts)" in message
    # The embedder does not know what it was called for: indexing's wording is the CLI's.
    assert "embedded" not in message
    assert caught.value.code == "service" and caught.value.details["attempts"] == 3
    assert server.embedding_requests == 3


def test_a_timeout_is_retried(server, make):
    server.script = [("sleep", 1.0)]
    embedder = make(server.url, timeout=0.3)
    assert embedder.embed_documents(["slow"]).shape == (1, 1024)
    assert embedder.usage.retries == 1


def test_persistent_timeouts_raise_service_error(server, make):
    server.latency = 1.0
    with pytest.raises(ServiceError, match=r"did not answer within 0\.2 s"):
        make(server.url, timeout=0.2, max_retries=1).embed_documents(["slow"])


def test_a_dropped_connection_is_retried(server, make):
    server.script = ["drop"]
    embedder = make(server.url)
    assert embedder.embed_documents(["flaky"]).shape == (1, 1024)
    assert embedder.usage.retries == 1


def test_connection_refused_names_the_base_url(make):
    url = closed_port_url()
    with pytest.raises(ServiceError) as caught:
        make(url, max_retries=2).embed_documents(["nobody home"])
    assert url in str(caught.value) and "Could not connect" in str(caught.value)
    assert "connection refused" in str(caught.value) and "SEMSEARCH_BASE_URL" in str(caught.value)
    assert caught.value.code == "service_unreachable"


def test_connection_refused_fails_fast_with_the_default_retries(state_path, caplog):
    url = closed_port_url()
    caplog.set_level(logging.WARNING, logger="semsearch")
    # The real defaults: 8 retries, a first backoff of 0.5 s (doubling, jittered).
    embedder = RemoteEmbedder("BAAI/bge-m3", base_url=url, api_key=TOKEN, state_path=state_path)
    assert embedder.max_retries == 8
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"\(3 attempts: connection refused\)"):
        embedder.embed_documents(["nobody home"])
    # Two quick retries (at most 0.5 s and 1 s of backoff), not eight over half a minute.
    assert time.monotonic() - started < 5
    assert embedder.usage.requests == 3
    retries = [record for record in caplog.records if record.levelno == logging.WARNING]
    host = url.split("/")[2]
    assert [record.getMessage().split(" in ")[0] for record in retries] == [
        f"Embedding request to {host} failed (connection refused); retry 1 of 2",
        f"Embedding request to {host} failed (connection refused); retry 2 of 2",
    ]
    assert all(re.search(r" in \d+\.\d s$", record.getMessage()) for record in retries)


def test_a_server_that_never_answers_times_out_per_semsearch_timeout(state_path, monkeypatch, caplog):
    monkeypatch.setenv("SEMSEARCH_TIMEOUT", "1")
    caplog.set_level(logging.WARNING, logger="semsearch")
    with SilentServer() as silent:
        embedder = RemoteEmbedder("BAAI/bge-m3", base_url=silent.url, api_key=TOKEN, state_path=state_path)
        assert embedder.timeout == 1.0
        started = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            embedder.embed_query("anyone there?")
        elapsed = time.monotonic() - started
    # One retry after a timeout, not eight: two waits of a second, plus the backoff.
    assert 2.0 <= elapsed < 6
    assert "did not answer within 1 s" in str(caught.value) and "(2 attempts)" in str(caught.value)
    assert "SEMSEARCH_TIMEOUT" in str(caught.value) and caught.value.code == "service_timeout"
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(messages) == 1 and "failed (no answer within 1 s); retry 1 of 1 in" in messages[0]


def test_the_timeout_defaults_to_30_seconds(state_path):
    assert RemoteEmbedder("BAAI/bge-m3", base_url="http://127.0.0.1:9/v1", state_path=state_path).timeout == 30.0


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_semsearch_timeout_is_a_config_error(state_path, monkeypatch, value):
    monkeypatch.setenv("SEMSEARCH_TIMEOUT", value)
    with pytest.raises(ConfigError) as caught:
        RemoteEmbedder("BAAI/bge-m3", base_url="http://127.0.0.1:9/v1", state_path=state_path)
    message = str(caught.value)
    assert "SEMSEARCH_TIMEOUT" in message and value in message and "greater than zero" in message
    assert "seconds to wait for one answer" in message


def test_retries_of_5xx_are_logged_as_warnings(server, make, caplog):
    caplog.set_level(logging.WARNING, logger="semsearch")
    server.script = [503, 429]
    server.retry_after = 0.1
    make(server.url).embed_documents(["hello"])
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "failed (HTTP 503); retry 1 of 8 in" in messages[0]
    assert "failed (HTTP 429, over the rate limit); retry 2 of 8 in 0.1 s" in messages[1]


def test_a_failing_batch_stops_the_others_sending(server, make):
    texts = [f"short {i}" for i in range(10)]
    make(server.url).embed_documents(["warm up"])  # import openai outside the timing
    server.reset_counters()
    server.script = [404]  # the first request fails for good
    # Burst 3: the client keeps one token spare, so two requests go at once.
    embedder = make(server.url, rps=2.0, burst=3, batch_size=1, concurrency=4)
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError):
        embedder.embed_documents(texts)
    # The other workers were waiting for the rate limit; they give up instead of sending.
    assert time.monotonic() - started < 0.4
    assert server.embedding_requests == 2


# -- errors for people ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_token_is_not_retried(server, make, status):
    server.script = [status]
    with pytest.raises(AuthenticationError) as caught:
        make(server.url).embed_documents(["hello"])
    message = str(caught.value)
    assert "IONOS_API_TOKEN" in message and ".env" in message and "missing or wrong" in message
    assert server.requests == 1


def test_a_wrong_token_is_reported(server, make):
    with pytest.raises(AuthenticationError):
        make(server.url, api_key="not-the-token").embed_documents(["hello"])
    assert server.requests == 1


@pytest.mark.parametrize("api_key", [None, ""])
def test_a_missing_token_fails_before_any_request(server, make, api_key):
    embedder = make(server.url, api_key=api_key)
    with pytest.raises(AuthenticationError, match="IONOS_API_TOKEN"):
        embedder.embed_documents(["hello"])
    with pytest.raises(AuthenticationError):
        embedder.embed_query("hello")
    assert server.requests == 0


def test_an_unknown_model_is_not_retried(server, make):
    with pytest.raises(ModelNotFoundError) as caught:
        make(server.url, "acme/no-such-model").embed_documents(["hello"])
    from semsearch.apps.advice import message

    # The library states the facts; the CLI's wording names the command to run.
    assert "acme/no-such-model" in str(caught.value) and "semsearch models" in message(caught.value)
    assert server.requests == 1


# -- batch size and long inputs --------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 413])
def test_refused_batches_shrink_and_the_size_is_remembered(server, make, state_path, status):
    server.max_batch, server.batch_status = 40, status
    texts = sample_texts(100)
    embedder = make(server.url)
    vectors = embedder.embed_documents(texts)
    assert np.array_equal(vectors, np.stack([server.vector(t) for t in texts]))
    assert sorted(server.texts) == sorted(texts)
    assert embedder.batch_size == 25
    saved = json.loads(state_path.read_text())
    learned = saved["endpoints"][server.url]["batch_size"]["BAAI/bge-m3"]
    assert learned["size"] == 25 and abs(learned["learned_at"] - time.time()) < 60

    server.reset_counters()
    again = make(server.url)
    assert again.batch_size == 25
    again.embed_documents(texts)
    assert set(server.statuses) == {200} and max(server.batch_sizes) == 25

    # A day later the service may take full batches again: the default is tried anew.
    learned["learned_at"] -= 2 * 24 * 3600
    state_path.write_text(json.dumps(saved))
    assert make(server.url).batch_size == 256


def test_a_400_that_is_not_about_size_fails_at_once_with_the_services_reason(server, make):
    server.script = [400] * 50
    embedder = make(server.url)
    with pytest.raises(EmbeddingError) as caught:
        embedder.embed_documents(sample_texts(40))
    assert server.requests == 1, "nothing was split or retried"
    assert "HTTP 400: Scripted failure 400." in str(caught.value)


def test_nan_from_the_service_is_a_service_error_not_a_rejected_input(server, make, monkeypatch):
    embedder = make(server.url)
    monkeypatch.setattr("tests.openai_server.vector_for", lambda text, dims: np.full(dims, np.nan, dtype=np.float32))
    with pytest.raises(ServiceError, match="NaN"):
        embedder.embed_documents(sample_texts(3))


def test_a_too_long_input_is_split_and_still_gets_one_vector(server, make, state_path):
    server.max_input_chars = 200
    long_text = " ".join(WORDS[i % len(WORDS)] + str(i % 5) for i in range(100))
    assert len(long_text) > 600
    texts = ["a short one", long_text, "another short one"]
    embedder = make(server.url)
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (3, 1024)
    assert np.array_equal(vectors[[0, 2]], np.stack([server.vector(texts[0]), server.vector(texts[2])]))
    assert math.isclose(float(np.linalg.norm(vectors[1])), 1.0, rel_tol=1e-5)
    assert float(vectors[1] @ server.vector(long_text)) > 0.9
    assert max(len(t) for t in server.texts) <= 200
    # One over-long input says nothing about how many inputs a request may hold.
    assert embedder.batch_size == 256 and not state_path.exists()


def test_an_input_refused_even_in_pieces_leaves_the_other_rows_in_the_error(server, make):
    server.count_tokens = lambda text: 10**6 if "poison" in text else token_count(text)
    server.max_input_tokens = 1000
    texts = sample_texts(6)
    texts[3] = "a perfectly ordinary sentence that happens to contain poison somewhere in it"
    embedder = make(server.url, batch_size=6)
    with pytest.raises(RequestTooLargeError) as caught:
        embedder.embed_documents(texts)
    vectors = caught.value.vectors
    assert [v is None for v in vectors] == [False, False, False, True, False, False]
    good = [t for i, t in enumerate(texts) if i != 3]
    assert np.array_equal(np.stack([v for v in vectors if v is not None]), np.stack([server.vector(t) for t in good]))
    assert sorted(set(server.texts) & set(good)) == sorted(good)
    assert embedder.batch_size == 6, "one bad input says nothing about the batch size"


def test_a_short_input_refused_on_its_own_raises_naming_its_length_only(server, make):
    server.max_input_chars = 5
    with pytest.raises(RequestTooLargeError) as caught:
        make(server.url).embed_documents(["abcdefghij"])
    assert "10 characters" in str(caught.value) and "abcdefghij" not in str(caught.value)


def test_an_empty_text_is_refused_before_sending(server, make):
    with pytest.raises(ValueError, match="text 1 is empty"):
        make(server.url).embed_documents(["fine", "  "])
    assert server.requests == 0


# -- encodings and models ----------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["reject_base64", "empty_base64", "float_for_base64"])
def test_float_fallback_when_base64_fails_is_remembered(server, make, state_path, behaviour):
    setattr(server, behaviour, True)
    texts = sample_texts(3)
    vectors = make(server.url).embed_documents(texts)
    assert np.array_equal(vectors, np.stack([server.vector(t) for t in texts]))
    assert server.formats[0] == "base64"
    assert json.loads(state_path.read_text())["endpoints"][server.url]["encoding_format"] == "float"

    server.reset_counters()
    make(server.url).embed_documents(texts)
    assert server.formats == ["float"]


def test_an_unknown_model_learns_its_dimension(make):
    with OpenAIServer(token=TOKEN, models={"acme/tiny-embed": 64}) as server:
        embedder = make(server.url, "acme/tiny-embed")
        assert (embedder.dimensions, embedder.max_tokens, embedder.query_prefix) == (None, None, "")
        assert embedder.embed_documents(["one", "two"]).shape == (2, 64)
        assert embedder.dimensions == 64
        assert embedder.embed_query("three").shape == (64,)


def test_token_counts_carry_a_margin_outside_xlmr():
    text = "Tokenisation differs between vocabularies, naturally."
    exact = xlmr_token_count(text)
    assert RemoteEmbedder("BAAI/bge-m3", api_key="x").count_tokens(text) == exact
    margin = math.ceil(exact * 1.25) + 2
    assert RemoteEmbedder("BAAI/bge-large-en-v1.5", api_key="x").count_tokens(text) == margin
    assert RemoteEmbedder("acme/unknown", api_key="x").count_tokens(text) == margin


# -- pacing ----------------------------------------------------------------------------------


def test_token_bucket_gives_a_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=10, capacity=3, clock=lambda: now[0])
    assert [bucket.try_acquire() for _ in range(3)] == [0, 0, 0]
    assert bucket.try_acquire() == pytest.approx(0.1)
    now[0] = 0.25  # 2.5 tokens accrued
    assert [bucket.try_acquire() for _ in range(2)] == [0, 0]
    assert bucket.try_acquire() == pytest.approx(0.05)
    now[0] = 100.0
    assert [bucket.try_acquire() for _ in range(3)] == [0, 0, 0]  # never more than capacity
    assert bucket.try_acquire() > 0


def test_token_bucket_pause_holds_everyone_and_restarts_empty():
    now = [0.0]
    bucket = TokenBucket(rate=10, capacity=5, clock=lambda: now[0])
    bucket.pause(1.0)
    assert bucket.try_acquire() == pytest.approx(1.0)
    now[0] = 1.0
    assert bucket.try_acquire() == pytest.approx(0.1)  # nothing saved up during the pause
    now[0] = 1.1
    assert bucket.try_acquire() == 0


def test_requests_from_all_embedders_on_one_endpoint_stay_within_the_rate(server, make):
    rate, burst = 40.0, 4
    embedders = [make(server.url, rps=rate, burst=burst, batch_size=1, concurrency=4) for _ in range(2)]
    threads = [threading.Thread(target=e.embed_documents, args=(sample_texts(20),)) for e in embedders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(server.request_times)
    assert len(times) == 40
    assert times[-1] - times[0] >= 0.8 * (40 - burst) / rate
    for i, start in enumerate(times):
        for window in (0.1, 0.25, 0.5):
            in_window = sum(1 for t in times[i:] if t < start + window)
            assert in_window <= rate * window + burst + 2  # generous: scheduling jitter


def test_pacing_at_the_contracts_own_limit_earns_no_429(server, make):
    # Both buckets run empty at full speed; requests reaching the server a little out of
    # step with their tokens must still find one there.
    server.rate, server.burst = 40.0, 4
    server.latency_jitter = 0.02
    make(server.url).embed_documents(["warm up"])  # import openai outside the timing
    server.reset_counters()
    # The contract's bucket starts full, as after any idle moment: the warm-up took a token.
    time.sleep(2 * server.burst / server.rate)
    embedder = make(server.url, rps=40.0, burst=4, batch_size=1, concurrency=4)
    embedder.embed_documents(sample_texts(80))
    assert server.rate_limited == 0 and embedder.usage.retries == 0
    assert server.inputs == 80


# -- usage and secrets ---------------------------------------------------------------------


def test_usage_counts_requests_inputs_tokens_retries_and_429s(server, make):
    server.script = [500, 429]
    server.retry_after = 0.05
    texts = sample_texts(10)
    embedder = make(server.url, batch_size=5, concurrency=1)
    embedder.embed_documents(texts)
    usage = embedder.usage
    assert (usage.requests, usage.inputs, usage.retries, usage.rate_limited) == (4, 10, 2, 1)
    assert usage.prompt_tokens == server.prompt_tokens == sum(token_count(t) for t in texts)
    assert usage.seconds > 0


def _failure(kind: str, make, server) -> tuple[BaseException, RemoteEmbedder]:
    server.leaky_errors = True
    url = server.url
    if kind == "401":
        server.token = "another-token"
    elif kind == "500":
        server.error_rate = 1.0
    elif kind == "404":
        server.models = {}
    elif kind == "timeout":
        server.latency = 1.0
    elif kind == "refused":
        url = closed_port_url()
    embedder = make(url, max_retries=1, timeout=0.2)
    with pytest.raises(Exception) as caught:
        embedder.embed_documents(["secret test"])
    return caught.value, embedder


@pytest.mark.parametrize("kind", ["401", "500", "404", "timeout", "refused"])
def test_the_token_never_shows(server, make, caplog, kind):
    caplog.set_level(logging.DEBUG)
    error, embedder = _failure(kind, make, server)
    assert isinstance(error, (AuthenticationError, ServiceError, ModelNotFoundError))
    shown = [str(error), repr(error), "".join(traceback.format_exception(error)),
             repr(embedder), repr(vars(embedder)), caplog.text]
    for text in shown:
        assert TOKEN not in text
    # Nothing from openai (whose request carries the Authorization header) is chained.
    assert error.__cause__ is None and error.__context__ is None


# -- the state file ------------------------------------------------------------------------


def test_a_corrupt_state_file_is_ignored_then_replaced(server, make, state_path):
    state_path.write_text("{not json")
    server.max_batch = 4
    embedder = make(server.url)
    assert embedder.batch_size == 256
    embedder.embed_documents(sample_texts(8))
    assert json.loads(state_path.read_text())["endpoints"][server.url]["batch_size"]["BAAI/bge-m3"]["size"] == 4


def test_an_unwritable_state_file_is_not_fatal(server, make, tmp_path):
    (tmp_path / "a-file").write_text("in the way")
    server.max_batch = 4
    embedder = make(server.url, state_path=tmp_path / "a-file" / "endpoints.json")
    assert embedder.embed_documents(sample_texts(8)).shape == (8, 1024)
    assert embedder.batch_size == 4


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("99999", 120.0), ("soon", None), (None, None)],
)
def test_retry_after_header_values(header, seconds):
    from semsearch.embedding.remote.transport import _retry_after

    assert _retry_after(header) == seconds


def test_retry_after_as_an_http_date():
    from email.utils import formatdate

    from semsearch.embedding.remote.transport import _retry_after

    assert 8 <= _retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
