"""Embedding models served over an OpenAI-compatible API, such as the IONOS AI Model Hub.

Requests go through the endpoint's `Transport` (pacing shared per endpoint, retries with
backoff, the token); here they are batched with a batch size learned from the endpoint's
refusals, and parsed straight from the response body into numpy.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import config
from ...errors import (
    ConfigError,
    EmbeddingError,
    ModelNotFoundError,
    RequestTooLargeError,
    ServiceError,
)
from ..base import BaseEmbedder, Usage
from ..catalogue import close_matches, model_info
from ..local import xlmr_token_count
from .endpoints import EndpointState
from .transport import Refused, Transport, json_or_none, posting

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# Requests in flight: enough to keep the rate limit busy while each request takes up to
# this many seconds (a batch of 256 long inputs can take one or two), at least the minimum.
LATENCY_COVERED = 2.0
MIN_CONCURRENCY = 4
MAX_CONCURRENCY = 32
DEFAULT_BATCH_SIZE = 256
# Below this no input is too long for any model, so a refusal must mean something else.
MIN_SPLIT_CHARS = 32
MAX_SPLIT_DEPTH = 8


def count_tokens_with(vocabulary: str | None, text: str) -> int:
    """Tokens a model of this vocabulary sees for `text`; an overestimate where it is not XLM-R's."""
    count = xlmr_token_count(text)
    if vocabulary == "xlm-roberta":
        return count
    # BERT's WordPiece (bge-large-en) splits rare words and non-English text into more
    # pieces than XLM-R does, so the XLM-R count only estimates it; the margin keeps
    # chunks under the model's limit.
    return math.ceil(count * 1.25) + 2


class RemoteEmbedder(BaseEmbedder):
    """A model behind an OpenAI-compatible `/embeddings` endpoint, paced, retried and batched.

    Safe to use from several threads. Unknown model ids work: `dimensions` is learned from
    the first response. Nothing is sent, and openai is not imported, until the first call.
    `usage` counts HTTP requests sent (failed ones too), inputs embedded, prompt tokens
    reported, retries, 429s received, and the wall-clock seconds during which any call was
    running (waits and retries included; concurrent calls are not counted twice).

    Args:
        model_id: the model to ask for, e.g. "BAAI/bge-m3".
        base_url: the API root; default `SEMSEARCH_BASE_URL` or the IONOS endpoint.
        api_key: the bearer token; default `IONOS_API_TOKEN` (environment or `./.env`).
        rps, burst: the contract's rate limit; default `SEMSEARCH_RPS`/`SEMSEARCH_BURST`,
            else 5 and 10. Shared by every embedder in the process using this base URL.
        concurrency: requests in flight at once; default `SEMSEARCH_CONCURRENCY`, else
            enough for requests of up to 2 s each at the rate limit (10 at 5/s), at least 4.
        batch_size: inputs per request to start with; default the size remembered for this
            endpoint and model, else 256. Halved when the endpoint refuses a batch.
        max_retries: retries per request after 429, 5xx, timeouts and connection errors;
            default `SEMSEARCH_MAX_RETRIES`, else 8. An endpoint nothing listens at is
            retried at most twice, a request that timed out once.
        timeout: seconds to wait for one response; default `SEMSEARCH_TIMEOUT`, else 30.
        backoff: first retry delay in seconds; doubles per attempt, with full jitter.
        state_path: JSON file remembering batch sizes and encodings per endpoint.
    """

    usage: Usage
    thread_safe = True

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        rps: float | None = None,
        burst: int | None = None,
        concurrency: int | None = None,
        batch_size: int | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        backoff: float = 0.5,
        state_path: Path | None = None,
    ) -> None:
        info = model_info(model_id)
        self.model_id = model_id
        self.dimensions: int | None = info.dimensions
        self.max_tokens: int | None = info.max_tokens
        self.query_prefix = info.query_prefix
        self.passage_prefix = info.passage_prefix
        self.vocabulary = info.vocabulary
        self._transport = transport = Transport(
            "embedding service", base_url=base_url, api_key=api_key, rps=rps, burst=burst,
            max_retries=max_retries, timeout=timeout, backoff=backoff,
        )
        self.base_url = transport.base_url
        self.endpoint = transport.endpoint
        self.rps, self.burst, self.max_retries = transport.rps, transport.burst, transport.max_retries
        self.timeout, self.backoff = transport.timeout, transport.backoff
        if concurrency is None:
            # A fixed handful of requests in flight caps the throughput at handful/latency,
            # below the rate limit once the service takes longer than handful/rps to answer.
            fitting = min(max(MIN_CONCURRENCY, math.ceil(self.rps * LATENCY_COVERED)), MAX_CONCURRENCY)
            concurrency = config.int_setting("SEMSEARCH_CONCURRENCY", fitting)
        self.concurrency = concurrency
        for name, value in [("concurrency", self.concurrency), ("batch_size", batch_size or 1)]:
            if not (1 <= value < math.inf):
                raise ConfigError(f"{name} must be at least 1, not {value}.")
        self._state = EndpointState(state_path)
        self.batch_size: int = batch_size or self._state.batch_size(self.base_url, model_id) or DEFAULT_BATCH_SIZE
        self._encoding = self._state.encoding_format(self.base_url) or "base64"
        self.usage = transport.usage
        self._lock = transport.lock
        self.rate_limit = transport.rate_limit
        self._active_calls = 0
        self._busy_since = 0.0

    def __repr__(self) -> str:
        return f"RemoteEmbedder(model_id={self.model_id!r}, base_url={self.base_url!r})"

    # -- public API ------------------------------------------------------------------------

    def pace_with(self, bucket: Any) -> Any:
        return self._transport.pace_with(bucket)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Embed `texts`; return float32 rows of shape (len(texts), dimensions), in input order.

        Raises:
            ValueError: a text is empty or only whitespace (no endpoint embeds those).
            AuthenticationError: no token, or the endpoint rejected it (never retried).
            ModelNotFoundError: the endpoint does not serve this model.
            RequestTooLargeError: an input was rejected even on its own and cut into short
                pieces. Its `vectors` holds the rows of the other inputs (None for the
                rejected ones), so that they need not be sent again.
            ServiceError: the service kept failing, or was unreachable, after the retries.
        """
        import numpy as np

        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"text {position} is empty; the endpoint cannot embed it.")
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        with self._busy():
            matrix = self._embed_all([self.passage_prefix + text for text in texts])
        self._raise_if_rejected(matrix, texts)
        return matrix

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a search query (with the model's query instruction); shape (dimensions,)."""
        if not text.strip():
            raise ValueError("the query is empty.")
        with self._busy():
            matrix, _ = self._embed_batch([self.query_prefix + text], threading.Event())
        self._raise_if_rejected(matrix, [text])
        return matrix[0]

    def _raise_if_rejected(self, matrix: np.ndarray, texts: list[str]) -> None:
        """Raise RequestTooLargeError, keeping the good rows, if any row is the NaN of a rejection."""
        import numpy as np

        rejected = np.isnan(matrix).any(axis=1)
        if not rejected.any():
            return
        first = int(np.argmax(rejected))
        error = RequestTooLargeError(
            f"{self.base_url} rejected an input of {len(texts[first])} characters for model {self.model_id} "
            f"even on its own and cut into short pieces ({int(rejected.sum())} of {len(texts)} inputs). "
            "Use smaller chunks for this model, or check the text."
        )
        error.vectors = [None if bad else row for row, bad in zip(matrix, rejected)]
        raise error

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`; an overestimate where the vocabulary differs."""
        return count_tokens_with(self.vocabulary, text)

    def portable_count_tokens(self) -> Callable[[str], int]:
        return functools.partial(count_tokens_with, self.vocabulary)

    def list_models(self) -> list[str]:
        """The ids of the models the endpoint serves (`GET /models`)."""
        with self._busy():
            return self._transport.model_ids(self.model_id)

    # -- batching --------------------------------------------------------------------------

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        self._openai_client()  # a missing token fails here, before any thread starts
        stop = threading.Event()
        size = self.batch_size
        batches = [texts[start:start + size] for start in range(0, len(texts), size)]
        if len(batches) == 1 or self.concurrency == 1:
            return np.vstack([self._embed_batch(batch, stop)[0] for batch in batches])
        pool = ThreadPoolExecutor(min(self.concurrency, len(batches)), thread_name_prefix="semsearch-embed")
        futures: list = []
        failure: BaseException | None = None
        try:
            futures = [pool.submit(self._embed_batch, batch, stop) for batch in batches]
            wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in futures if f.done() and f.exception()), None)
        finally:
            # Once one batch has failed (or the caller was interrupted) the others start no
            # new requests; those already sent are left to finish.
            if failure is not None or not all(future.done() for future in futures):
                stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            raise failure
        return np.vstack([future.result()[0] for future in futures])

    def _embed_batch(self, texts: list[str], stop: threading.Event, depth: int = 0) -> tuple[np.ndarray, bool]:
        """Rows for `texts`, and whether some single input had to be split as too long."""
        import numpy as np

        size = self.batch_size
        if len(texts) > size:  # the batch size shrank since this batch was cut
            parts = [self._embed_batch(texts[i:i + size], stop, depth) for i in range(0, len(texts), size)]
            return np.vstack([rows for rows, _ in parts]), any(split for _, split in parts)
        outcome = self._request_embeddings(texts, stop)
        if not isinstance(outcome, Refused):
            return outcome, False
        if len(texts) == 1:
            return self._embed_too_long(texts[0], stop, depth, outcome.status), True
        half = (len(texts) + 1) // 2
        left, left_split = self._embed_batch(texts[:half], stop, depth)
        right, right_split = self._embed_batch(texts[half:], stop, depth)
        # A refusal explained by one over-long input says nothing about the batch size;
        # learning from it would shrink every later batch to a single input.
        if not (left_split or right_split):
            self._shrink_batch(half)
        return np.vstack([left, right]), left_split or right_split

    def _embed_too_long(self, text: str, stop: threading.Event, depth: int, status: int) -> np.ndarray:
        """One row for an input the endpoint refused: the token-weighted mean of its halves, or
        NaN when it cannot be cut further (so the other inputs of the call keep their rows)."""
        import numpy as np

        if len(text) < MIN_SPLIT_CHARS or depth >= MAX_SPLIT_DEPTH:
            piece = "a piece of a longer input" if depth else "an input"
            if self.dimensions is None:  # no row shape to mark it with yet
                raise RequestTooLargeError(
                    f"{self.base_url} rejected {piece} of {len(text)} characters for model {self.model_id} "
                    f"even on its own (HTTP {status}). Use smaller chunks for this model, or check the text."
                )
            log.info("%s rejected %s of %d characters for %s even on its own (HTTP %d)",
                     self.base_url, piece, len(text), self.model_id, status)
            return np.full((1, self.dimensions), np.nan, dtype=np.float32)
        left, right = _split_near_middle(text)
        halves, _ = self._embed_batch([left, right], stop, depth + 1)
        if np.isnan(halves).any():
            return np.full((1, halves.shape[1]), np.nan, dtype=np.float32)
        weights = np.array([xlmr_token_count(left), xlmr_token_count(right)], dtype=np.float64)
        mean = weights @ halves.astype(np.float64) / weights.sum()
        norm = np.linalg.norm(mean)
        return (mean / norm if norm else mean).astype(np.float32)[None, :]

    def _shrink_batch(self, size: int) -> None:
        with self._lock:
            if size >= self.batch_size:
                return
            self.batch_size = size
        log.info("%s refused larger batches of %s; now %d inputs per request", self.base_url, self.model_id, size)
        self._state.remember_batch_size(self.base_url, self.model_id, size)

    # -- one embeddings request ------------------------------------------------------------

    def _request_embeddings(self, texts: list[str], stop: threading.Event) -> np.ndarray | Refused:
        """Rows for `texts` from one request (retried as needed), or the 400/413 refusing it."""
        for _ in range(2):  # a second round only after switching from base64 to float
            encoding = self._encoding
            self._openai_client()
            outcome = self._transport.send(
                posting("/embeddings", {"model": self.model_id, "input": texts, "encoding_format": encoding}),
                stop, model=self.model_id, what="embedding request", encoding_sensitive=encoding == "base64",
            )
            if isinstance(outcome, str):  # the endpoint objected to base64
                self._use_float()
                continue
            if isinstance(outcome, Refused):
                if outcome.status in (400, 413) and outcome.about_size:
                    return outcome
                if outcome.status == 404:
                    near = close_matches(self.model_id)
                    raise ModelNotFoundError(
                        f"{self.base_url} does not serve the model {self.model_id!r} (HTTP 404)."
                        + (f" Did you mean {near[0]!r}?" if near else ""),
                        hint="List the models it serves, or check SEMSEARCH_BASE_URL.",
                        model=self.model_id, endpoint=self.base_url,
                    )
                raise EmbeddingError(
                    f"{self.base_url} refused to embed with model {self.model_id} ({outcome.explained()}).",
                    hint="Check the model id (the endpoint's model list shows those it serves) and the service's reason.",
                    code="refused", model=self.model_id, endpoint=self.base_url,
                )
            matrix = self._parse_embeddings(outcome, len(texts), encoding)
            if matrix is not None:
                return matrix
            self._use_float()
        raise ServiceError(f"{self.base_url} answered without embeddings for model {self.model_id}.",
                           model=self.model_id, endpoint=self.base_url)

    def _parse_embeddings(self, body: bytes, expected: int, encoding: str) -> np.ndarray | None:
        """The rows in a response body, or None when a base64 request came back empty."""
        # Parsed by hand: the openai client's pydantic models take longer over a float
        # response than the rate limit leaves between requests.
        import numpy as np

        payload = json_or_none(body)
        data = payload.get("data") if isinstance(payload, dict) else None
        if data == [] and encoding == "base64":
            return None
        matrix = as_strings = None
        try:
            items = [item for _, item in sorted(enumerate(data or ()), key=lambda pair: pair[1].get("index", pair[0]))]
            as_strings = isinstance(items[0]["embedding"], str)
            if len(items) == expected:
                matrix = np.vstack([
                    np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") if as_strings
                    else np.asarray(item["embedding"], dtype=np.float32)
                    for item in items
                ]).astype(np.float32, copy=False)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError, binascii.Error):
            pass
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] == 0:
            raise ServiceError(f"{self.base_url} sent malformed embeddings for model {self.model_id}.",
                               model=self.model_id, endpoint=self.base_url)
        if encoding == "base64" and not as_strings:
            self._use_float()  # it ignores base64, so ask for what it sends anyway
        with self._lock:
            if self.dimensions is None:
                self.dimensions = matrix.shape[1]
            dimensions = self.dimensions
        if not np.isfinite(matrix).all():
            # Not marked as a refused input: the service answered, with something unusable.
            raise ServiceError(
                f"{self.base_url} returned vectors holding NaN, infinite or missing values for model {self.model_id}."
            )
        if matrix.shape[1] != dimensions:
            raise ServiceError(
                f"{self.base_url} returned {matrix.shape[1]}-dimensional vectors for model "
                f"{self.model_id}, which has {dimensions}."
            )
        usage = payload.get("usage")
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        self._count(inputs=expected, prompt_tokens=tokens if isinstance(tokens, int) else 0)
        return matrix

    def _use_float(self) -> None:
        if self._encoding != "float":
            log.info("%s does not return base64 embeddings; asking for floats", self.base_url)
            self._encoding = "float"
            self._state.remember_encoding_format(self.base_url, "float")

    # -- the HTTP layer: pacing, retries, errors -------------------------------------------

    def _openai_client(self) -> Any:
        if not self._transport.has_token:
            near = close_matches(self.model_id)
            if near:
                # More likely a typo of a model semsearch knows than a remote model.
                raise ModelNotFoundError(
                    f"Unknown model {self.model_id!r}: did you mean {near[0]!r}?",
                    hint=f"Remote models need {config.TOKEN_VARIABLE}; `local` is the bundled model.",
                    code="unknown_model", model=self.model_id, suggestions=near,
                )
        return self._transport.client(self.model_id)

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """Count wall-clock time while any call runs, once however many threads are calling."""
        self._mark_busy(+1)
        try:
            yield
        finally:
            self._mark_busy(-1)

    def _mark_busy(self, change: int) -> None:
        with self._lock:
            now = time.monotonic()
            if self._active_calls:
                self.usage.seconds += now - self._busy_since
            self._busy_since = now
            self._active_calls += change

    def _count(self, **deltas: float) -> None:
        self._transport.count(**deltas)


def _split_near_middle(text: str) -> tuple[str, str]:
    """Two non-empty halves of `text`, cut at the whitespace nearest its middle if any."""
    middle = cut = len(text) // 2
    for offset in range(len(text) // 4):
        if text[middle - offset].isspace() or text[middle + offset].isspace():
            cut = middle - offset if text[middle - offset].isspace() else middle + offset
            break
    left, right = text[:cut].rstrip(), text[cut:].lstrip()
    return (left, right) if left and right else (text[:middle], text[middle:])
