"""Ranking chunks for a query: one retriever's order, or dense and keyword fused, capped per file."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..results import SearchResult

if TYPE_CHECKING:
    from ..storage.base import Retrieval


def _result(row: dict[str, Any], score: float) -> SearchResult:
    return SearchResult(
        path=row["path"],
        score=float(score),
        text=row["text"],
        start_line=row["start_line"],
        end_line=row["end_line"],
        chunk_id=row["chunk_id"],
        title=row["title"],
        section=row["section"],
        page=row["page"],
        start_char=row["start_char"],
        end_char=row["end_char"],
        metadata=json.loads(row["metadata"]) if row["metadata"] else None,
        format=row["format"],
    )


def for_query(results: list[SearchResult], query: str) -> list[SearchResult]:
    """Tell each result the query it answers, from which its snippet is worked out when
    read; returns `results`."""
    for result in results:
        result.query = query
    return results


# Hybrid search adds to a chunk's cosine similarity KEYWORD_WEIGHT times the share of the
# query's keyword evidence it holds (BM25 over the query's ceiling), cubed; see `fuse`.
# Tuned on SciFact train (benchmarks/retrieval.py) with the bundled model, among the
# settings that keep every paraphrased and cross-language sample query
# (tests/sample_queries.json) first by more than rounding: a chunk matching the whole query
# gains 0.1, more than the usual cosine gap between a good answer and a poor one, while one
# holding a third of the query's evidence gains under 0.004. With models whose cosines
# spread wider than the bundled model's, keywords count for less.
KEYWORD_WEIGHT = 0.1
KEYWORD_POWER = 3.0
# Below this rank cosines count as the one at it, so that a chunk's hybrid score does not
# depend on how deep the dense list was read (deeper for a larger `limit`).
DENSE_FLOOR_RANK = 50


@dataclass(frozen=True)
class Ranking:
    """One retriever's answer: chunk ids best first with its own scores, and for keyword
    search the score a perfect match of the whole query would approach."""

    ids: list[int]
    scores: list[float]
    ceiling: float | None = None

    def ranks(self) -> dict[int, int]:
        return {chunk_id: rank for rank, chunk_id in enumerate(self.ids, 1)}

    def shares(self) -> dict[int, float]:
        """Keyword scores as the share of the query matched: BM25 over its ceiling, at most 1."""
        top = self.ceiling or 1.0
        return {i: min(1.0, s / top) for i, s in zip(self.ids, self.scores)}

    def counted(self) -> dict[int, float]:
        """Scores as fusion counts them: keyword shares to KEYWORD_POWER, in [0, 1]; dense
        scores as they are (cosine similarity is already on a fixed scale), but not below
        the one at DENSE_FLOOR_RANK."""
        if self.ceiling is not None:
            return {i: share**KEYWORD_POWER for i, share in self.shares().items()}
        floor = self.floor()
        return {i: max(s, floor) for i, s in zip(self.ids, self.scores)}

    def floor(self) -> float:
        """The dense score at DENSE_FLOOR_RANK (or the last, in a shorter list): what a
        chunk further down counts, in the list or not."""
        return self.scores[min(DENSE_FLOOR_RANK, len(self.scores)) - 1] if self.scores else 0.0


def fuse(dense: Ranking, keyword: Ranking) -> list[tuple[int, float]]:
    """Cosine similarity plus weighted keyword evidence, scaled by 1 / (1 + KEYWORD_WEIGHT).

    Reciprocal rank fusion treats the first few ranks of each list as nearly equal, so any
    keyword hit, even one that shares only common words with the query, reorders the top
    of the dense list. Here a keyword hit counts by how much of the query it matches (BM25
    over the query's ceiling): a paraphrase or a question in another language, which
    shares no rare word with its answer, leaves the dense order alone, while a match on a
    rare name or code counts fully. Dense scores are not rescaled per query: stretching the
    gap between the best and the fiftieth to [0, 1] magnifies it when the vectors cannot
    tell the candidates apart, which is when keywords should decide (on SciFact train it
    also scored higher; benchmarks/README.md). Bruch et al., "An Analysis of Fusion
    Functions for Hybrid Retrieval", likewise found a convex combination of scores to beat
    RRF. A chunk that only keyword search found counts the dense floor (see `Ranking.floor`).
    """
    fused = dense.counted()
    floor = dense.floor()
    for chunk_id, value in keyword.counted().items():
        fused[chunk_id] = fused.get(chunk_id, floor) + KEYWORD_WEIGHT * value
    scale = 1.0 + KEYWORD_WEIGHT
    return sorted(((chunk_id, score / scale) for chunk_id, score in fused.items()), key=lambda item: -item[1])


def rank(
    retrieval: Retrieval,
    dense: Callable[[int], Ranking] | None,
    keyword: Callable[[int], Ranking] | None,
    *,
    limit: int,
    per_file: int | None,
    explain: bool = False,
) -> list[SearchResult]:
    """The best `limit` chunks by one retriever or both fused, at most `per_file` per document.

    `dense(k)` and `keyword(k)` return their top `k`; when the per-file cap leaves too few
    results, they are asked again for more.
    """
    depth = max(limit * 5, 50)
    while True:
        dense_ranking = dense(depth) if dense else Ranking([], [])
        keyword_ranking = keyword(depth) if keyword else Ranking([], [])
        if dense and keyword:
            order = fuse(dense_ranking, keyword_ranking)
        else:
            only = dense_ranking if dense else keyword_ranking
            order = list(zip(only.ids, only.scores))
        results = _cap(retrieval, order, limit, per_file)
        exhausted = len(dense_ranking.ids) < depth and len(keyword_ranking.ids) < depth
        if len(results) >= limit or exhausted:
            break
        depth *= 4
    if explain:
        _explain(results, dense_ranking if dense else None, keyword_ranking if keyword else None)
    return results


def _cap(retrieval: Retrieval, order: list[tuple[int, float]], limit: int, per_file: int | None) -> list[SearchResult]:
    results: list[SearchResult] = []
    taken: dict[int, int] = {}
    # Rows (with their text) are read only as far down the order as the per-file cap makes
    # necessary: first as many as asked for, then twice as many as are still missing. Each
    # row read from a cold file is a wait for the disk. When one long document fills the top
    # of the order, that can be all the way down.
    position, end = 0, len(order)
    while position < end and len(results) < limit:
        part = order[position : min(position + (limit - len(results)) * (2 if position else 1), end)]
        position += len(part)
        rows = retrieval.chunk_rows([chunk_id for chunk_id, _ in part])
        for chunk_id, score in part:
            row = rows.get(chunk_id)
            if row is None:  # deleted since the cache was written
                continue
            document = row["document_id"]
            if per_file and taken.get(document, 0) >= per_file:
                continue
            taken[document] = taken.get(document, 0) + 1
            results.append(_result(row, score))
            if len(results) == limit:
                return results
    return results


def _explain(results: list[SearchResult], dense: Ranking | None, keyword: Ranking | None) -> None:
    lists = [(name, ranking) for name, ranking in (("dense", dense), ("keyword", keyword)) if ranking is not None]
    ranks = {name: ranking.ranks() for name, ranking in lists}
    shares = keyword.shares() if keyword else {}
    # What fusion counted, when there was fusion.
    counted = (dense.counted(), keyword.counted()) if dense and keyword else None
    for result in results:
        parts: dict[str, Any] = {}
        for name, ranking in lists:
            position = ranks[name].get(result.chunk_id)
            parts[f"{name}_rank"] = position
            parts[f"{name}_score"] = ranking.scores[position - 1] if position else None
            if name == "keyword":
                parts["keyword_share"] = round(shares.get(result.chunk_id, 0.0), 4)
                # BM25 of a chunk holding every word of the query once: what the share is of.
                parts["keyword_ceiling"] = round(ranking.ceiling or 0.0, 4)
        if counted and dense is not None:
            # A chunk missing from a list counted the dense floor, or no keyword evidence.
            parts["dense_counted"] = round(counted[0].get(result.chunk_id, dense.floor()), 4)
            parts["keyword_counted"] = round(counted[1].get(result.chunk_id, 0.0), 6)
            parts["keyword_power"] = KEYWORD_POWER
            parts["keyword_weight"] = KEYWORD_WEIGHT
            parts["fusion"] = (
                f"(cosine {parts['dense_counted']:.4f} + {KEYWORD_WEIGHT:g} × share^{KEYWORD_POWER:g} "
                f"{parts['keyword_counted']:.6f}) / {1 + KEYWORD_WEIGHT:g} = {result.score:.4f}"
            )
        result.explain = parts
