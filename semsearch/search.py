"""Ranking chunks for a query, and the results people see."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Store


@dataclass
class SearchResult:
    """One passage that answers a query: where it is, how well it matched, what it says."""

    path: str
    score: float
    text: str
    start_line: int
    end_line: int
    chunk_id: int
    title: str | None = None
    section: str | None = None
    page: int | None = None
    start_char: int = 0
    end_char: int = 0
    metadata: dict[str, Any] | None = None
    # With explain=True: each ranking's rank and score for this chunk, and how they fused.
    explain: dict[str, Any] | None = None
    # The best sentence or two of `text` for the query, and [start, end] offsets into `text`
    # of the query's words (see `snippets.best_snippet`).
    snippet: str | None = None
    highlights: list[list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    )


def add_snippets(results: list[SearchResult], query: str) -> list[SearchResult]:
    """Fill each result's `snippet` and `highlights` for `query`; returns `results`."""
    from .snippets import best_snippet

    for result in results:
        result.snippet, result.highlights = best_snippet(result.text, query)
    return results


MODES = ("hybrid", "dense", "keyword")
# Weight of the keyword evidence against the dense evidence in hybrid search, and the power
# applied to the share of the query a keyword hit matches; see `fuse`. Tuned on SciFact
# train (benchmarks/retrieval.py): a high weight lets a chunk holding most of the query's
# rare words win, and the cube keeps a chunk sharing a few of them from reordering the
# dense list; the paraphrased and cross-language sample queries stay first with it.
KEYWORD_WEIGHT = 3.0
KEYWORD_POWER = 3.0
# Dense scores are normalised between the best and the one at this rank.
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

    def normalised(self) -> dict[int, float]:
        """Scores mapped to [0, 1]: keyword scores as the share of the query matched (BM25
        over its ceiling), dense scores between the best and the one at DENSE_FLOOR_RANK."""
        if not self.ids:
            return {}
        if self.ceiling is not None:
            top = self.ceiling or 1.0
            return {i: min(1.0, s / top) ** KEYWORD_POWER for i, s in zip(self.ids, self.scores)}
        best = self.scores[0]
        floor = self.scores[min(DENSE_FLOOR_RANK, len(self.scores)) - 1]
        spread = best - floor
        return {i: max(0.0, (s - floor) / spread) if spread > 0 else 1.0 for i, s in zip(self.ids, self.scores)}


def fuse(dense: Ranking, keyword: Ranking) -> list[tuple[int, float]]:
    """A convex combination of normalised scores, scaled to [0, 1].

    Reciprocal rank fusion treats the first few ranks of each list as nearly equal, so any
    keyword hit, even one that shares only common words with the query, reorders the top
    of the dense list. Here a keyword hit counts by how much of the query it matches (BM25
    over the query's ceiling): a paraphrase or a question in another language, which
    shares no rare word with its answer, leaves the dense order alone, while a match on a
    rare name or code counts fully. (Convex combination of normalised scores is also what
    Bruch et al., "An Analysis of Fusion Functions for Hybrid Retrieval", found to beat RRF.)
    """
    fused = dict.fromkeys(dense.ids, 0.0) | dict.fromkeys(keyword.ids, 0.0)
    for chunk_id, value in dense.normalised().items():
        fused[chunk_id] += value
    for chunk_id, value in keyword.normalised().items():
        fused[chunk_id] += KEYWORD_WEIGHT * value
    scale = 1.0 + KEYWORD_WEIGHT
    return sorted(((chunk_id, score / scale) for chunk_id, score in fused.items()), key=lambda item: -item[1])


def rank(
    store: Store,
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
        results = _cap(store, order, limit, per_file)
        exhausted = len(dense_ranking.ids) < depth and len(keyword_ranking.ids) < depth
        if len(results) >= limit or exhausted:
            break
        depth *= 4
    if explain:
        _explain(results, dense_ranking if dense else None, keyword_ranking if keyword else None)
    return results


def _cap(store: Store, order: list[tuple[int, float]], limit: int, per_file: int | None) -> list[SearchResult]:
    results: list[SearchResult] = []
    taken: dict[int, int] = {}
    # Rows (with their text) are read only as far down the order as the per-file cap makes
    # necessary: first as many as asked for, then twice as many as are still missing. Each
    # row read from a cold file is a wait for the disk.
    position, end = 0, min(len(order), max(limit * 20, 200))
    while position < end and len(results) < limit:
        part = order[position : min(position + (limit - len(results)) * (2 if position else 1), end)]
        position += len(part)
        rows = store.chunk_rows([chunk_id for chunk_id, _ in part])
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
    facts = {name: (ranking.ranks(), ranking.normalised()) for name, ranking in lists}
    for result in results:
        parts: dict[str, Any] = {}
        for name, ranking in lists:
            ranks, normalised = facts[name]
            position = ranks.get(result.chunk_id)
            parts[f"{name}_rank"] = position
            parts[f"{name}_score"] = ranking.scores[position - 1] if position else None
            parts[f"{name}_normalised"] = round(normalised.get(result.chunk_id, 0.0), 4)
        if len(lists) == 2:
            parts["fusion"] = (
                f"({parts['dense_normalised']:.3f} + {KEYWORD_WEIGHT:g} × {parts['keyword_normalised']:.3f})"
                f" / {1 + KEYWORD_WEIGHT:g} = {result.score:.4f}"
            )
        result.explain = parts
