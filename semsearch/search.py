"""Ranking chunks for a query, and the results people see."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .store import Store
    from .vectors import VectorIndex


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


def dense_search(
    store: Store,
    vectors: VectorIndex,
    query: np.ndarray,
    *,
    limit: int,
    per_file: int | None,
) -> list[SearchResult]:
    """The `limit` best chunks by cosine similarity, at most `per_file` from one document."""
    k = max(limit * 4, 20)
    while True:
        ids, scores = vectors.search(query, k)
        rows = store.chunk_rows(ids)
        results: list[SearchResult] = []
        taken: dict[int, int] = {}
        for chunk_id, score in zip(ids.tolist(), scores.tolist()):
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
        if len(ids) < k:  # everything there is has been seen
            return results
        k *= 4
