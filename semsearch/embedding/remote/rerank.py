"""Rerank models served over an OpenAI-compatible API (`POST /rerank`), such as the IONOS
AI Model Hub's: a query and candidate passages in one request, a relevance score for each.

The request is the one IONOS, vLLM, TEI, Jina and Cohere-style servers take, `{"model",
"query", "documents", "top_n"}`, answered by `{"results": [{"index", "relevance_score"}]}`.
It goes through the endpoint's `Transport`, so it shares the embedding client's token,
retries and rate limit (IONOS counts both against one contract limit).
"""

from __future__ import annotations

import math
import time
from typing import Any

from ... import config
from ...errors import EmbeddingError, ModelNotFoundError, ServiceError
from ..local import xlmr_token_count
from .transport import Refused, Transport

# Seconds one query's reranking may take, retries included (SEMSEARCH_RERANK_TIMEOUT);
# past it the search keeps its first-stage order.
DEFAULT_BUDGET = 10.0
# Tokens of query and passage together that a rerank model reads, unless it is known to
# read more; chunks are cut to fit (semsearch's own are about 320 tokens).
DEFAULT_MAX_TOKENS = 1024
MODEL_VARIABLE = "SEMSEARCH_RERANK_MODEL"


def is_rerank_model(model_id: str) -> bool:
    """Whether a model id a service lists names a reranker (no listing says which kind a model is)."""
    return "rerank" in model_id.lower()


class RemoteReranker:
    """A rerank model behind an OpenAI-compatible `/rerank` endpoint.

    Args:
        model_id: the rerank model; default `SEMSEARCH_RERANK_MODEL`, else the first rerank
            model the endpoint lists (asked once, on first use).
        budget: seconds one `rerank` call may take, retries included; default
            `SEMSEARCH_RERANK_TIMEOUT`, else 10.
        max_tokens: the tokens of query and passage together the model reads; longer
            passages are cut to fit.
        base_url, api_key, rps, burst, max_retries, timeout, backoff: as for
            `RemoteEmbedder`; the rate limit is shared with every client of the endpoint.
    """

    def __init__(
        self,
        model_id: str | None = None,
        *,
        budget: float | None = None,
        max_tokens: int | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        rps: float | None = None,
        burst: int | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        backoff: float = 0.5,
    ) -> None:
        self._transport = Transport(
            "rerank service", base_url=base_url, api_key=api_key, rps=rps, burst=burst,
            max_retries=max_retries, timeout=timeout, backoff=backoff,
        )
        self.model_id: str | None = model_id or config.setting(MODEL_VARIABLE)
        self.budget = budget if budget is not None else config.float_setting(
            "SEMSEARCH_RERANK_TIMEOUT", DEFAULT_BUDGET, meaning="the seconds one query's reranking may take"
        )
        if not (0 < self.budget < math.inf):
            raise EmbeddingError(f"The rerank budget must be a number of seconds greater than zero, not {self.budget}.")
        self.max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self.base_url = self._transport.base_url
        self.endpoint = self._transport.endpoint
        self.usage = self._transport.usage

    def __repr__(self) -> str:
        return f"RemoteReranker(model_id={self.model_id!r}, base_url={self.base_url!r})"

    def list_models(self) -> list[str]:
        """The rerank models the endpoint lists (`GET /models`)."""
        return [model for model in self._transport.model_ids(self.model_id or "a rerank model") if is_rerank_model(model)]

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        """A relevance score for each of `documents` against `query`, in their order; higher
        is more relevant. One request, cut short after `budget` seconds.

        Raises:
            AuthenticationError: no token, or the endpoint rejected it.
            ModelNotFoundError: the endpoint does not serve the rerank model.
            ServiceError: the endpoint serves no rerank model, has no rerank route, failed,
                or took longer than the budget (code "over_time").
            EmbeddingError: the endpoint refused the request (code "refused").
        """
        if not documents:
            return []
        deadline = time.monotonic() + self.budget
        model = self._model()
        query = _fit(query, self.max_tokens // 2)
        room = max(self.max_tokens - _tokens(query) - 8, 32)
        body = {"model": model, "query": query, "documents": [_fit(text, room) for text in documents],
                "top_n": len(documents)}
        answer = self._transport.post("/rerank", body, model=model, what="rerank request", deadline=deadline)
        if isinstance(answer, Refused):
            raise self._refused(answer, model)
        return _scores(answer, len(documents), self.base_url, model)

    def _model(self) -> str:
        if self.model_id is None:
            served = self.list_models()
            if not served:
                raise ServiceError(
                    f"{self.base_url} lists no rerank model.",
                    hint=f"Set {MODEL_VARIABLE} to the rerank model to use.",
                    code="no_reranker", endpoint=self.base_url,
                )
            self.model_id = served[0]
        return self.model_id

    def _refused(self, refusal: Refused, model: str) -> EmbeddingError:
        if refusal.status == 404 and ("model" in refusal.reason.lower() or model in refusal.reason):
            return ModelNotFoundError(
                f"{self.base_url} does not serve the rerank model {model!r} (HTTP 404).",
                hint=f"List the models it serves, or check {MODEL_VARIABLE}.",
                model=model, endpoint=self.base_url,
            )
        if refusal.status in (404, 405):
            return ServiceError(
                f"{self.base_url} has no rerank endpoint ({refusal.explained()}).",
                code="no_reranker", endpoint=self.base_url,
            )
        return EmbeddingError(
            f"{self.base_url} refused to rerank with model {model} ({refusal.explained()}).",
            code="refused", model=model, endpoint=self.base_url,
        )


def _scores(answer: Any, expected: int, url: str, model: str) -> list[float]:
    """The scores in a rerank answer, by document: `results` (Cohere, Jina, vLLM, IONOS) or a
    bare list (TEI), each with an `index` and a `relevance_score` (or `score`)."""
    items: Any = answer.get("results", answer.get("data")) if isinstance(answer, dict) else answer
    scores: list[float | None] = [None] * expected
    try:
        for item in items:
            index = item["index"]
            value = item.get("relevance_score", item.get("score"))
            if type(index) is not int or not 0 <= index < expected or not isinstance(value, (int, float)):
                raise ValueError(item)
            if not math.isfinite(value):
                raise ValueError(value)
            scores[index] = float(value)
    except (AttributeError, KeyError, TypeError, ValueError):
        scores = []
    if len(scores) != expected or any(score is None for score in scores):
        raise ServiceError(f"{url} sent a malformed rerank answer for model {model}.", model=model, endpoint=url)
    return [score for score in scores if score is not None]


def _tokens(text: str) -> int:
    # An overestimate for vocabularies other than XLM-R's (most rerankers'), so that a cut
    # passage fits whatever the model counts.
    return math.ceil(xlmr_token_count(text) * 1.25) + 2


def _fit(text: str, limit: int) -> str:
    from ...text.chunking import fit_to_tokens

    return fit_to_tokens(text, limit, _tokens)
