"""Measuring retrieval quality on BEIR-layout datasets: the metrics and the run.

A dataset folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`,
`text`) and `qrels/<split>.tsv` (`query-id`, `corpus-id`, `score`, with a header line).
Documents are indexed as records (`Index.add_texts`); a query's ranking is its documents
in the order of their best chunk.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DatasetError

if TYPE_CHECKING:
    from .index import Index


@dataclass
class Dataset:
    """A corpus, queries and their relevance judgements."""

    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {document id: relevance}


def _jsonl(path: Path, fields: tuple[str, ...]) -> Iterable[dict[str, Any]]:
    """The objects of a JSON-lines file, each checked to hold `fields` (strings, or `_id` a number)."""
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise DatasetError(f"{path}:{number} is not a JSON line.") from None
                    if not isinstance(row, dict) or any(
                        not isinstance(row.get(name), str) and not (name == "_id" and isinstance(row.get(name), int))
                        for name in fields
                    ):
                        raise DatasetError(f"{path}:{number} is not an object with {' and '.join(fields)}.")
                    yield row
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing: a BEIR dataset has corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv.") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None


def load_dataset(folder: str | Path, split: str = "test", queries: str | Path | None = None) -> Dataset:
    """Read a BEIR-layout folder. `queries` may name another dataset folder (or a
    queries.jsonl) whose queries and qrels to use against this corpus, for cross-lingual runs."""
    folder = Path(folder)
    source = Path(queries) if queries else folder
    queries_file = source if source.suffix == ".jsonl" else source / "queries.jsonl"
    qrels_file = (source.parent if source.suffix == ".jsonl" else source) / "qrels" / f"{split}.tsv"
    corpus = {
        str(row["_id"]): (row.get("title") or "", row.get("text") or "") for row in _jsonl(folder / "corpus.jsonl", ("_id",))
    }
    if not corpus:
        raise DatasetError(f"{folder / 'corpus.jsonl'} holds no documents.")
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = qrels_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{qrels_file} is missing: is {split!r} a split of this dataset?") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{qrels_file} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    for number, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        try:
            score = int(parts[2])
        except ValueError:
            raise DatasetError(f"{qrels_file}:{number}: the score {parts[2]!r} is not a whole number.") from None
        if score > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = score
    texts = {str(row["_id"]): row["text"] for row in _jsonl(queries_file, ("_id", "text"))}
    judged = {query_id: texts[query_id] for query_id in qrels if query_id in texts}
    if not judged:
        raise DatasetError(f"No query in {queries_file} has judgements in {qrels_file}.")
    return Dataset(corpus, judged, {query_id: qrels[query_id] for query_id in judged})


# -- metrics (graded relevance, linear gain, as trec_eval and BEIR compute them) ------------


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], 1))
    ideal = sum(rel / math.log2(rank + 1) for rank, rel in enumerate(sorted(relevant.values(), reverse=True)[:k], 1))
    return gains / ideal if ideal else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    return next((1.0 / rank for rank, doc in enumerate(ranked[:k], 1) if relevant.get(doc, 0) > 0), 0.0)


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, rel in relevant.items() if rel > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class EvalReport:
    """Mean metrics over the queries, and what the run cost."""

    ndcg_10: float
    mrr_10: float
    recall_10: float
    recall_100: float
    queries: int
    index_seconds: float
    latency_p50_ms: float
    latency_p95_ms: float
    mode: str
    model: str
    per_query: dict[str, float] = field(default_factory=dict, repr=False)
    # With rerank=True: the rerank model, how many queries it reranked (the others kept
    # the first-stage order), and the notes of those it could not.
    reranker: str | None = None
    reranked: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ndcg@10": round(self.ndcg_10, 4), "mrr@10": round(self.mrr_10, 4),
            "recall@10": round(self.recall_10, 4), "recall@100": round(self.recall_100, 4),
            "queries": self.queries, "index_seconds": round(self.index_seconds, 2),
            "latency_p50_ms": round(self.latency_p50_ms, 2), "latency_p95_ms": round(self.latency_p95_ms, 2),
            "mode": self.mode, "model": self.model,
            "reranker": self.reranker, "reranked": self.reranked,
        }


def evaluate(
    index: Index,
    dataset: Dataset,
    *,
    mode: str = "hybrid",
    progress: Callable[[int, int], None] | None = None,
    index_progress: Callable[[Any], None] | None = None,
    rerank: bool = False,
) -> EvalReport:
    """Index the corpus (documents already there are reused) and score every query (with
    `rerank`, through `index.reranker` as a second stage)."""
    ids = list(dataset.corpus)
    started = time.perf_counter()
    index.add_texts(
        ids,
        [dataset.corpus[i][1] for i in ids],
        [{"title": dataset.corpus[i][0]} if dataset.corpus[i][0] else None for i in ids],
        progress=index_progress,
    )
    index_seconds = time.perf_counter() - started
    scores: dict[str, list[float]] = {"ndcg": [], "mrr": [], "r10": [], "r100": []}
    latencies: list[float] = []
    per_query: dict[str, float] = {}
    reranked = 0
    notes: list[str] = []
    for done, (query_id, text) in enumerate(dataset.queries.items(), 1):
        started = time.perf_counter()
        hits = index.search(text, limit=100, per_file=1, mode=mode, rerank=rerank)
        latencies.append((time.perf_counter() - started) * 1000)
        reranked += bool(hits.reranked)
        notes.extend(note for note in hits.notes if note not in notes)
        ranked = [hit.path for hit in hits]
        relevant = dataset.qrels[query_id]
        per_query[query_id] = ndcg_at(ranked, relevant)
        scores["ndcg"].append(per_query[query_id])
        scores["mrr"].append(mrr_at(ranked, relevant))
        scores["r10"].append(recall_at(ranked, relevant, 10))
        scores["r100"].append(recall_at(ranked, relevant, 100))
        if progress:
            progress(done, len(dataset.queries))
    count = len(dataset.queries)
    return EvalReport(
        ndcg_10=sum(scores["ndcg"]) / count, mrr_10=sum(scores["mrr"]) / count,
        recall_10=sum(scores["r10"]) / count, recall_100=sum(scores["r100"]) / count,
        queries=count, index_seconds=index_seconds,
        latency_p50_ms=_percentile(latencies, 0.5), latency_p95_ms=_percentile(latencies, 0.95),
        mode=mode, model=index.model, per_query=per_query,
        reranker=(index.reranker.model_id or "the endpoint's reranker") if rerank else None,
        reranked=reranked, notes=notes,
    )
