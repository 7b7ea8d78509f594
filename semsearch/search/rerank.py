"""Reranking as a second stage: the first stage's best candidates, scored by a rerank model
in one request, in an order that blends its scores with the first stage's ranks.

The blend is position-aware: the higher the first stage put a candidate, the more its rank
counts against the reranker's score, so that a reranker that is unsure (scores close
together) cannot bury an exact keyword hit, while one that is sure can lift a passage from
far down. The weights are those qmd uses for the same purpose. A reranker that fails, is
too slow or is missing leaves the first-stage order as it was, with a note saying why.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

from ..errors import AuthenticationError, ConfigError, EmbeddingError, ModelNotFoundError

if TYPE_CHECKING:
    from ..results import SearchResult

# Candidates sent to the reranker: one request of 40 chunks of about 320 tokens.
DEFAULT_DEPTH = 40
# The first stage's weight by its rank (up to and including the first number); the
# reranker's is the rest.
FIRST_STAGE_WEIGHTS = ((3, 0.75), (10, 0.60), (math.inf, 0.40))


class Reranker(Protocol):
    """What semsearch needs from a rerank model: its id and a score per passage."""

    model_id: str | None

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        """A relevance score for each of `documents`, in their order; higher is more relevant."""
        ...


def first_stage_weight(rank: int) -> float:
    return next(weight for last, weight in FIRST_STAGE_WEIGHTS if rank <= last)


def relevance(scores: list[float]) -> list[float]:
    """Scores on a 0-1 scale: as they are when the model gives probabilities (as the rerank
    endpoints of IONOS, Cohere and Jina do), through a sigmoid when it gives logits."""
    if all(0.0 <= score <= 1.0 for score in scores):
        return list(scores)
    return [1.0 / (1.0 + math.exp(-max(min(score, 50.0), -50.0))) for score in scores]


def blend(
    candidates: list[SearchResult], scores: list[float], *, depth: int | None = None, explain: bool = False
) -> list[SearchResult]:
    """`candidates` (first-stage order) reordered by the blend of their first-stage rank and
    their rerank `scores`; each result's `score` becomes the blended score, from 0 to 1.

    A candidate at first-stage rank r counts 1 - (r - 1) / n for its rank, weighted by
    `first_stage_weight(r)`, plus the reranker's relevance for the rest; n is the rerank
    `depth` (default: as many as there are candidates), so that a rank counts the same
    however many candidates the first stage found.
    """
    depth = max(depth or 0, len(candidates))
    shown = relevance(scores)
    blended = []
    for rank, (result, score, raw) in enumerate(zip(candidates, shown, scores), 1):
        weight = first_stage_weight(rank)
        position = 1.0 - (rank - 1) / depth
        value = weight * position + (1.0 - weight) * score
        if explain:
            facts = dict(result.explain or {})
            facts.update({
                "first_stage_rank": rank,
                "first_stage_score": round(result.score, 6),
                "rerank_score": round(raw, 6),
                "rerank_relevance": round(score, 6),
                "rerank_blend": (
                    f"{weight:g} × rank {rank} of {depth} ({position:.4f}) + {1 - weight:g} × relevance "
                    f"{score:.4f} = {value:.4f}"
                ),
            })
            result.explain = facts
        result.score = value
        blended.append((value, -rank, result))
    blended.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [result for _, _, result in blended]


def rerank_results(
    reranker: Reranker, query: str, results: list[SearchResult], depth: int, *, explain: bool = False
) -> tuple[list[SearchResult], str | None]:
    """The first `depth` of `results` reranked and blended, the rest after them in their
    order with a score of 0; and a note when reranking was not possible (the order and
    scores are then unchanged).

    A wrong token, a rerank model the service does not serve and a bad setting are raised,
    as for embedding; any other failure (the service down, over its time budget, no rerank
    model or endpoint, a malformed answer) leaves the first-stage order.
    """
    head, tail = results[:depth], results[depth:]
    if not head:
        return results, None
    try:
        scores = reranker.rerank(query, [result.text for result in head])
    except (AuthenticationError, ModelNotFoundError, ConfigError):
        raise
    except EmbeddingError as exc:
        return results, f"Not reranked, results are in first-stage order: {exc.message}"
    if len(scores) != len(head):
        return results, (
            f"Not reranked, results are in first-stage order: the reranker gave {len(scores)} scores for "
            f"{len(head)} passages."
        )
    for result in tail:
        # Past the depth the reranker saw nothing: the blend's share for the rank is spent.
        result.score = 0.0
    return blend(head, list(scores), depth=depth, explain=explain) + tail, None
