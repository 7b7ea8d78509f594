"""Ranking chunks for a query: one retriever's order, or dense and keyword fused, capped per file."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..results import SearchResult

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

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
# A chunk waiting for its vector counts, in place of its cosine, the mean of what this many
# embedded keyword hits nearest it in keyword evidence count (see `stand_ins`).
STAND_IN_NEIGHBOURS = 5


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


def stand_ins(dense: Ranking, keyword: Ranking, waiting: Set[int]) -> dict[int, float]:
    """What each keyword hit in `waiting` (chunks whose vector is not there yet) counts in
    place of a cosine: the mean of what the STAND_IN_NEIGHBOURS embedded keyword hits with
    the nearest share of the query's evidence count (the floor for those not among the dense
    candidates, as in `fuse`). So a waiting chunk ranks as an embedded one holding the same
    keywords would on average, neither pushed down for lacking a vector (as the floor would)
    nor lifted by one; with no embedded keyword hit to compare, it counts the floor."""
    dense_counted = dense.counted()
    floor = dense.floor()
    shares = keyword.shares()
    known = sorted((share, dense_counted.get(chunk_id, floor)) for chunk_id, share in shares.items() if chunk_id not in waiting)
    found: dict[int, float] = {}
    for chunk_id in waiting:
        if chunk_id not in shares:
            continue
        if not known:
            found[chunk_id] = floor
            continue
        share = shares[chunk_id]
        nearest = sorted(known, key=lambda pair: abs(pair[0] - share))[:STAND_IN_NEIGHBOURS]
        found[chunk_id] = sum(value for _, value in nearest) / len(nearest)
    return found


def fuse(dense: Ranking, keyword: Ranking, waiting: Set[int] | None = None) -> list[tuple[int, float]]:
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
    RRF. A chunk that only keyword search found counts the dense floor (see `Ranking.floor`);
    one that `waiting` names (its vector is not there yet) counts its stand-in (`stand_ins`).
    """
    fused = dense.counted()
    floor = dense.floor()
    substitutes = stand_ins(dense, keyword, waiting) if waiting else {}
    for chunk_id, value in keyword.counted().items():
        fused[chunk_id] = fused.get(chunk_id, substitutes.get(chunk_id, floor)) + KEYWORD_WEIGHT * value
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
    waiting: Callable[[list[int]], set[int]] | None = None,
) -> list[SearchResult]:
    """The best `limit` chunks by one retriever or both fused, at most `per_file` per document.

    `dense(k)` and `keyword(k)` return their top `k`; when the per-file cap leaves too few
    results, they are asked again for more. `waiting(ids)` tells which chunks wait for their
    vectors (given while the index has a backlog).
    """
    depth = max(limit * 5, 50)
    held: set[int] = set()
    while True:
        if dense and keyword and retrieval.parallel_retrieval:
            dense_ranking, keyword_ranking = _together(dense, keyword, depth)
        else:
            dense_ranking = dense(depth) if dense else Ranking([], [])
            keyword_ranking = keyword(depth) if keyword else Ranking([], [])
        if dense and keyword:
            held = waiting(keyword_ranking.ids) if waiting else set()
            order = fuse(dense_ranking, keyword_ranking, held)
        else:
            only = dense_ranking if dense else keyword_ranking
            order = list(zip(only.ids, only.scores))
        results = _cap(retrieval, order, limit, per_file)
        exhausted = len(dense_ranking.ids) < depth and len(keyword_ranking.ids) < depth
        if len(results) >= limit or exhausted:
            break
        depth *= 4
    if explain:
        if waiting and not (dense and keyword):
            held = waiting([result.chunk_id for result in results])  # to mark them, as nothing was fused
        _explain(results, dense_ranking if dense else None, keyword_ranking if keyword else None, held)
    return results


_helpers: ThreadPoolExecutor | None = None
_helpers_made = threading.Lock()


def _together(dense: Callable[[int], Ranking], keyword: Callable[[int], Ranking], depth: int) -> tuple[Ranking, Ranking]:
    """Both retrievals at once: keyword search in a helper thread while dense search runs in
    this one. The helpers live as long as the process, so the connection each opens (one
    per thread and index) is opened once, not per search."""
    global _helpers
    with _helpers_made:
        if _helpers is None:
            from concurrent.futures import ThreadPoolExecutor

            _helpers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="semsearch-keyword")
    found = _helpers.submit(keyword, depth)
    try:
        dense_ranking = dense(depth)
    except BaseException:
        found.cancel()
        raise
    return dense_ranking, found.result()


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


def _explain(results: list[SearchResult], dense: Ranking | None, keyword: Ranking | None, waiting: Set[int] = frozenset()) -> None:
    lists = [(name, ranking) for name, ranking in (("dense", dense), ("keyword", keyword)) if ranking is not None]
    ranks = {name: ranking.ranks() for name, ranking in lists}
    shares = keyword.shares() if keyword else {}
    # What fusion counted, when there was fusion.
    counted = (dense.counted(), keyword.counted()) if dense and keyword else None
    substitutes = stand_ins(dense, keyword, waiting) if dense and keyword and waiting else {}
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
        if result.chunk_id in waiting:
            parts["waiting"] = True  # for its vector: found by keywords alone so far
        if counted and dense is not None:
            # A chunk missing from a list counted the dense floor (or, waiting for its vector,
            # its stand-in), or no keyword evidence.
            stand_in = substitutes.get(result.chunk_id)
            parts["dense_counted"] = round(counted[0].get(result.chunk_id, dense.floor() if stand_in is None else stand_in), 4)
            parts["keyword_counted"] = round(counted[1].get(result.chunk_id, 0.0), 6)
            parts["keyword_power"] = KEYWORD_POWER
            parts["keyword_weight"] = KEYWORD_WEIGHT
            cosine = "stand-in cosine" if stand_in is not None else "cosine"
            parts["fusion"] = (
                f"({cosine} {parts['dense_counted']:.4f} + {KEYWORD_WEIGHT:g} × share^{KEYWORD_POWER:g} "
                f"{parts['keyword_counted']:.6f}) / {1 + KEYWORD_WEIGHT:g} = {result.score:.4f}"
            )
        result.explain = parts
