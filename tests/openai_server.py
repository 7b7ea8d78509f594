"""A loopback OpenAI-compatible embeddings and rerank server for tests and benchmarks.

It answers `GET /v1/models`, `POST /v1/embeddings` and `POST /v1/rerank` the way the IONOS
AI Model Hub does (reranking as vLLM, TEI, Jina and Cohere do),
and can misbehave on request: rate limits with Retry-After, scripted or random failures,
latency, batch and input-length caps, no base64. Vectors are a hashed bag of words, so
they are deterministic (`vector_for(text, dims)`) and similar texts get similar vectors.

    with OpenAIServer(token="secret") as server:
        client = OpenAI(base_url=server.url, api_key="secret")

Every setting is an attribute and may be changed between requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DEFAULT_MODELS = {
    "BAAI/bge-m3": 1024,
    "BAAI/bge-large-en-v1.5": 1024,
    "sentence-transformers/paraphrase-multilingual-mpnet-base-v2": 768,
}

DEFAULT_RERANK_MODELS = ["Qwen/Qwen3-VL-Reranker-8B"]

_WORD = re.compile(r"\w+")


def overlap_score(query: str, document: str) -> float:
    """The test reranker's known rule: the share of the query's distinct words that the
    document holds, from 0 to 1."""
    wanted = set(_WORD.findall(query.lower()))
    return len(wanted & set(_WORD.findall(document.lower()))) / len(wanted) if wanted else 0.0


def vector_for(text: str, dims: int) -> np.ndarray:
    """The unit float32 vector the server returns for `text`: a signed hashed bag of words."""
    vector = np.zeros(dims, dtype=np.float64)
    words = _WORD.findall(text.lower()) or [text]
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        vector[value % dims] += 1.0 if (value >> 63) & 1 else -1.0
    norm = np.linalg.norm(vector)
    if norm == 0:  # words cancelled out: fall back to one bucket so the vector stays unit
        vector[0] = 1.0
        norm = 1.0
    return (vector / norm).astype(np.float32)


def cheap_vector_for(text: str, dims: int) -> np.ndarray:
    """A unit vector from one hash of `text`: for benchmarks, where the service's own work
    must cost next to nothing."""
    value = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
    vector = np.zeros(dims, dtype=np.float32)
    vector[value % dims] = 1.0
    return vector


def token_count(text: str) -> int:
    """What the server reports as prompt tokens for one input: words plus two specials."""
    return len(_WORD.findall(text)) + 2


class OpenAIServer:
    """A ThreadingHTTPServer on 127.0.0.1 with an ephemeral port; see the module docstring.

    Settings:
      token: required bearer token (None accepts anything); wrong or missing → 401.
      models: served model ids and their dimensions; others → 404.
      rate, burst: a token-bucket rate limit; past it → 429 with `Retry-After: retry_after`.
      script: statuses to answer next, consumed one per embeddings request before anything
        else; an int status, "drop" (close the connection unanswered) or ("sleep", seconds).
      error_rate, error_status, seed: random failures from a seeded RNG.
      latency, latency_per_input, latency_jitter: seconds slept before a normal answer.
      max_batch, batch_status: more inputs than max_batch → batch_status (400 or 413).
      max_input_chars: any longer input → 400 "input too long".
      max_input_tokens, count_tokens: an input of more than max_input_tokens tokens as
        `count_tokens(text)` counts them (default `token_count`) → 400 "input too long".
      reject_base64: encoding_format=base64 → 400 naming encoding_format.
      empty_base64: base64 → 200 with empty `data`; float_for_base64: base64 → floats.
      leaky_errors: error messages echo the Authorization header, as careless services do,
        so tests can prove the client never repeats them.
      rerank_models: served rerank model ids (listed by /v1/models too); others → 404.
      rerank_rule: score(query, document) of a rerank answer (default `overlap_score`).
      rerank_script: as `script`, for rerank requests; rerank_latency: seconds per answer.
      rerank_max_chars: any longer document (or query) → 400 "input too long".
      cheap_vectors: answer with `cheap_vector_for` (one hash a text) instead of `vector_for`.
    Counters (reset with `reset_counters()`): requests (all, each with its time in
      request_times and Authorization header in authorizations), embedding_requests,
      statuses (every answer), rate_limited (429s sent), batch_sizes and formats (of every
      parsed embeddings request), inputs, prompt_tokens and texts (of requests answered
      with vectors; a text embedded twice appears twice), max_in_flight (most embeddings
      requests being answered at once), reranks (the body of every rerank request).
    """

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        models: dict[str, int] | None = None,
        rate: float | None = None,
        burst: int | None = None,
        retry_after: float | None = 1,
        script: list | None = None,
        error_rate: float = 0.0,
        error_status: int = 500,
        seed: int = 0,
        latency: float = 0.0,
        latency_per_input: float = 0.0,
        latency_jitter: float = 0.0,
        max_batch: int | None = None,
        batch_status: int = 413,
        max_input_chars: int | None = None,
        max_input_tokens: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        reject_base64: bool = False,
        empty_base64: bool = False,
        float_for_base64: bool = False,
        leaky_errors: bool = False,
        rerank_models: list[str] | None = None,
        rerank_rule: Callable[[str, str], float] | None = None,
        rerank_script: list | None = None,
        rerank_latency: float = 0.0,
        rerank_max_chars: int | None = None,
        cheap_vectors: bool = False,
    ) -> None:
        self.token = token
        self.models = dict(DEFAULT_MODELS if models is None else models)
        self.rate = rate
        self.burst = burst
        self.retry_after = retry_after
        self.script = list(script or [])
        self.error_rate = error_rate
        self.error_status = error_status
        self.random = random.Random(seed)
        self.latency = latency
        self.latency_per_input = latency_per_input
        self.latency_jitter = latency_jitter
        self.max_batch = max_batch
        self.batch_status = batch_status
        self.max_input_chars = max_input_chars
        self.max_input_tokens = max_input_tokens
        self.count_tokens = count_tokens or token_count
        self.reject_base64 = reject_base64
        self.empty_base64 = empty_base64
        self.float_for_base64 = float_for_base64
        self.leaky_errors = leaky_errors
        self.rerank_models = list(DEFAULT_RERANK_MODELS if rerank_models is None else rerank_models)
        self.rerank_rule = rerank_rule or overlap_score
        self.rerank_script = list(rerank_script or [])
        self.rerank_latency = rerank_latency
        self.rerank_max_chars = rerank_max_chars
        self.cheap_vectors = cheap_vectors
        self.lock = threading.Lock()
        self._bucket_tokens = float(burst or 1)
        self._bucket_time = time.monotonic()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset_counters()

    def reset_counters(self) -> None:
        with self.lock:
            self.requests = 0
            self.embedding_requests = 0
            self.inputs = 0
            self.rate_limited = 0
            self.prompt_tokens = 0
            self.statuses: list[int] = []
            self.batch_sizes: list[int] = []
            self.texts: list[str] = []
            self.formats: list[str] = []
            self.authorizations: list[str | None] = []
            self.request_times: list[float] = []
            self.in_flight = 0
            self.max_in_flight = 0
            self.reranks: list[dict] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        # A short poll interval makes shutdown() (and so every test's teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to give the openai client: http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def vector(self, text: str, model: str = "BAAI/bge-m3") -> np.ndarray:
        return vector_for(text, self.models[model])

    # -- decisions (called by the handler) -------------------------------------------------

    def _take_rate_token(self) -> bool:
        if not self.rate:
            return True
        now = time.monotonic()
        capacity = float(self.burst or 1)
        self._bucket_tokens = min(capacity, self._bucket_tokens + (now - self._bucket_time) * self.rate)
        self._bucket_time = now
        if self._bucket_tokens >= 1:
            self._bucket_tokens -= 1
            return True
        return False


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that timed out and hung up is expected in these tests; anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _error_body(message: str, kind: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    app: OpenAIServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's pool expects
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (40 ms on Linux), which a real service does not add.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        with self.app.lock:
            self.app.statuses.append(status)

    def _send_error(self, status: int, message: str, kind: str, code: str | None = None,
                    headers: dict[str, str] | None = None) -> None:
        if self.app.leaky_errors:
            message = f"{message} (request had Authorization: {self.headers.get('Authorization')})"
        self._send_json(status, _error_body(message, kind, code), headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization")
        with self.app.lock:
            self.app.requests += 1
            self.app.authorizations.append(header)
            self.app.request_times.append(time.monotonic())
        if self.app.token is None or header == f"Bearer {self.app.token}":
            return True
        self._send_error(401, "Invalid or missing API token.", "invalid_request_error", "invalid_api_key")
        return False

    def _rate_limited(self) -> bool:
        with self.app.lock:
            allowed = self.app._take_rate_token()
            if not allowed:
                self.app.rate_limited += 1
        if allowed:
            return False
        headers = {} if self.app.retry_after is None else {"Retry-After": f"{self.app.retry_after:g}"}
        self._send_error(429, "Rate limit exceeded.", "rate_limit_error", "rate_limit_exceeded", headers)
        return True

    # -- endpoints -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._read_body()
        if not self._authorized() or self._rate_limited():
            return
        if self.path.rstrip("/") != "/v1/models":
            self._send_error(404, f"No route {self.path}.", "invalid_request_error")
            return
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "semsearch-tests"}
            for model in [*self.app.models, *self.app.rerank_models]
        ]
        self._send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        raw = self._read_body()
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/rerank":
            self._answer_rerank(raw)
            return
        if self.path.rstrip("/") != "/v1/embeddings":
            self._send_error(404, f"No route {self.path}.", "invalid_request_error")
            return
        app = self.app
        with app.lock:
            app.embedding_requests += 1
            app.in_flight += 1
            app.max_in_flight = max(app.max_in_flight, app.in_flight)
            step = app.script.pop(0) if app.script else None
        try:
            self._answer_embeddings(raw, step)
        finally:
            with app.lock:
                app.in_flight -= 1

    def _answer_rerank(self, raw: bytes) -> None:
        app = self.app
        with app.lock:
            step = app.rerank_script.pop(0) if app.rerank_script else None
        if step is not None and self._scripted(step):
            return
        if self._rate_limited():
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._send_error(400, "Body is not JSON.", "invalid_request_error")
            return
        with app.lock:
            app.reranks.append(request)
        model, query, documents = request.get("model"), request.get("query"), request.get("documents")
        if model not in app.rerank_models:
            self._send_error(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")
            return
        if not isinstance(query, str) or not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            self._send_error(400, "query must be a string and documents a list of strings.", "invalid_request_error")
            return
        if app.rerank_max_chars is not None and any(len(text) > app.rerank_max_chars for text in [query, *documents]):
            self._send_error(400, "input too long for this model.", "invalid_request_error")
            return
        time.sleep(app.rerank_latency)
        scored = sorted(
            ({"index": i, "relevance_score": app.rerank_rule(query, text)} for i, text in enumerate(documents)),
            key=lambda item: -item["relevance_score"],
        )
        top_n = request.get("top_n")
        self._send_json(200, {
            "id": "rerank-test", "model": model,
            "results": scored[:top_n] if isinstance(top_n, int) else scored,
            "usage": {"total_tokens": sum(token_count(t) for t in [query, *documents])},
        })

    def _answer_embeddings(self, raw: bytes, step: object) -> None:
        app = self.app
        if step is not None and self._scripted(step):
            return
        if self._rate_limited():
            return
        with app.lock:
            fail = app.error_rate > 0 and app.random.random() < app.error_rate
            jitter = app.random.uniform(0, app.latency_jitter) if app.latency_jitter else 0.0
        if fail:
            self._send_error(app.error_status, "Internal error.", "server_error")
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._send_error(400, "Body is not JSON.", "invalid_request_error")
            return
        self._embeddings(request, jitter)

    def _scripted(self, step: object) -> bool:
        """Answer a scripted step; return False when the step only delays a normal answer."""
        if step == "drop":
            self.close_connection = True
            return True
        if isinstance(step, tuple) and step[0] == "sleep":
            time.sleep(step[1])
            return False
        status = int(step)  # type: ignore[call-overload]
        if status == 429:
            with self.app.lock:
                self.app.rate_limited += 1
            headers = {} if self.app.retry_after is None else {"Retry-After": f"{self.app.retry_after:g}"}
            self._send_error(429, "Rate limit exceeded.", "rate_limit_error", "rate_limit_exceeded", headers)
        else:
            self._send_error(status, f"Scripted failure {status}.", "server_error" if status >= 500 else "invalid_request_error")
        return True

    def _embeddings(self, request: dict, jitter: float) -> None:
        app = self.app
        model = request.get("model")
        texts = request.get("input")
        if isinstance(texts, str):
            texts = [texts]
        fmt = request.get("encoding_format") or "float"
        with app.lock:
            app.formats.append(fmt)
            if isinstance(texts, list):
                app.batch_sizes.append(len(texts))
        if model not in app.models:
            self._send_error(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")
            return
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            self._send_error(400, "input must be a non-empty string or list of non-empty strings.", "invalid_request_error")
            return
        if fmt not in ("float", "base64") or (fmt == "base64" and app.reject_base64):
            self._send_error(400, f"Unsupported encoding_format {fmt!r}; use 'float'.", "invalid_request_error")
            return
        if app.max_batch is not None and len(texts) > app.max_batch:
            self._send_error(app.batch_status, f"Too many inputs: at most {app.max_batch}.", "invalid_request_error")
            return
        if app.max_input_chars is not None and any(len(t) > app.max_input_chars for t in texts):
            self._send_error(400, "input too long for this model.", "invalid_request_error")
            return
        if app.max_input_tokens is not None and any(app.count_tokens(t) > app.max_input_tokens for t in texts):
            self._send_error(400, f"input too long: at most {app.max_input_tokens} tokens.", "invalid_request_error")
            return
        # The latency is the whole answer time: computing the vectors counts towards it.
        answer_by = time.monotonic() + app.latency + app.latency_per_input * len(texts) + jitter
        dims = app.models[model]
        tokens = sum(token_count(t) for t in texts)
        if fmt == "base64" and app.empty_base64:
            data = []
        else:
            as_base64 = fmt == "base64" and not app.float_for_base64
            data = []
            make = cheap_vector_for if app.cheap_vectors else vector_for
            for index, text in enumerate(texts):
                vector = make(text, dims)
                embedding = (
                    base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                    if as_base64 else vector.tolist()
                )
                data.append({"object": "embedding", "index": index, "embedding": embedding})
        delay = answer_by - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with app.lock:
            app.inputs += len(texts)
            app.prompt_tokens += tokens
            if data:
                app.texts.extend(texts)
        self._send_json(200, {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })


class SilentServer:
    """A loopback port that accepts connections and never answers: the kernel completes
    each handshake (the listen backlog) and the request waits for a reply that never comes.

        with SilentServer() as silent:
            RemoteEmbedder("BAAI/bge-m3", base_url=silent.url, ...)
    """

    def __init__(self) -> None:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"

    def __enter__(self) -> SilentServer:
        self._socket.listen(64)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()


def endpoint_environment(server: OpenAIServer, token: str) -> dict[str, str]:
    """The settings that make semsearch (this process, or one it starts) use `server` as its
    endpoint, unpaced."""
    return {"SEMSEARCH_BASE_URL": server.url, "IONOS_API_TOKEN": token, "SEMSEARCH_RPS": "1000", "SEMSEARCH_BURST": "1000"}


@contextmanager
def as_endpoint(monkeypatch, token: str) -> Iterator[OpenAIServer]:
    """A running server that semsearch takes for its endpoint while the test runs."""
    with OpenAIServer(token=token) as running:
        for name, value in endpoint_environment(running, token).items():
            monkeypatch.setenv(name, value)
        yield running
