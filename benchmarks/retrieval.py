"""Retrieval quality on real benchmarks (../shared/data): SciFact and XQuAD.

    python benchmarks/retrieval.py scifact [--split train|test] [--weights 0.5,1,2] [--powers 1,2] [--chunk-tokens N]
    python benchmarks/retrieval.py xquad [--languages en,de,zh] [--weights ...]
    python benchmarks/retrieval.py sample [--weights ...] [--powers ...]
    python benchmarks/retrieval.py all --rrf 60  # hybrid by reciprocal rank fusion instead
    python benchmarks/retrieval.py all          # the table in benchmarks/README.md

Every run uses the bundled local model. Embeddings are cached by text under
benchmarks/.cache, so re-runs (other fusion weights, other splits) only pay for queries;
the first SciFact run embeds 5,183 abstracts, which takes the better part of an hour on two
cores. Beside semsearch's dense, keyword and hybrid modes, the SciFact table has a plain
baseline that embeds each whole abstract (title and text) with the same model and ranks
by cosine, no chunking. Tune on `train`; report `test`. `sample` counts how many of the
paraphrased sample queries (tests/sample_queries.json) find their document first over
sample_docs with each fusion setting: the tuning rule keeps only settings that put all 20
first. `--rrf K` replaces semsearch's fusion with reciprocal rank fusion (score
1/(K + rank) summed over the two lists), the usual default, for comparison. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from semsearch import Index, LocalEmbedder  # noqa: E402
from semsearch.evaluation import Dataset, evaluate, load_dataset, mrr_at, ndcg_at, recall_at  # noqa: E402
from semsearch.search import ranking as search  # noqa: E402
from semsearch.settings import ChunkSettings  # noqa: E402

DATA = REPO.parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache"


class CachedEmbedder:
    """The local model, with every vector it computes kept on disk by text (and kind)."""

    def __init__(self, inner=None) -> None:
        self.inner = inner or LocalEmbedder()
        self.model_id = self.inner.model_id
        self.dimensions = self.inner.dimensions
        self.max_tokens = self.inner.max_tokens
        self.batch_size = self.inner.batch_size
        self.count_tokens = self.inner.count_tokens
        CACHE.mkdir(exist_ok=True)
        self.db = sqlite3.connect(CACHE / f"embeddings-{self.model_id}.db", check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        self.computed = 0

    def _lookup(self, texts: list[str], kind: str, compute) -> np.ndarray:
        keys = [hashlib.blake2b(f"{kind}\0{t}".encode(), digest_size=16).digest() for t in texts]
        found = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self.db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part)
            found.update((bytes(k), np.frombuffer(v, dtype="<f4")) for k, v in rows)
        missing = [i for i, key in enumerate(keys) if key not in found]
        if missing:
            fresh = compute([texts[i] for i in missing])
            with self.db:
                for i, vector in zip(missing, fresh):
                    self.db.execute("INSERT OR REPLACE INTO vectors VALUES (?, ?)", (keys[i], vector.astype("<f4").tobytes()))
                    found[keys[i]] = vector
            self.computed += len(missing)
        return np.stack([found[key] for key in keys]).astype(np.float32)

    def embed_documents(self, texts):
        return self._lookup(list(texts), "passage", self.inner.embed_documents)

    def embed_query(self, text):
        return self._lookup([text], "query", lambda batch: [self.inner.embed_query(t) for t in batch])[0]


def whole_document_baseline(dataset: Dataset, embedder: CachedEmbedder) -> dict[str, float]:
    """Each whole document (title and text) embedded once, ranked by cosine: no chunking."""
    ids = list(dataset.corpus)
    # The same text semsearch reads for a record, so a document that fits in one chunk
    # costs one embedding for both.
    texts = [f"{dataset.corpus[i][0]}\n\n{dataset.corpus[i][1]}".strip() for i in ids]
    matrix = np.vstack([embedder.embed_documents(texts[s : s + 32]) for s in range(0, len(texts), 32)])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = {"ndcg@10": [], "mrr@10": [], "recall@10": [], "recall@100": []}
    for query_id, text in dataset.queries.items():
        similarity = matrix @ embedder.embed_query(text)
        ranked = [ids[i] for i in np.argsort(-similarity)[:100]]
        relevant = dataset.qrels[query_id]
        scores["ndcg@10"].append(ndcg_at(ranked, relevant))
        scores["mrr@10"].append(mrr_at(ranked, relevant))
        scores["recall@10"].append(recall_at(ranked, relevant, 10))
        scores["recall@100"].append(recall_at(ranked, relevant, 100))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def run_modes(name: str, corpus_dir: Path, split: str, weights: list[float], powers: list[float], chunk_tokens: int | None,
              queries: Path | None = None, modes=("dense", "keyword", "hybrid")) -> list[tuple[str, dict]]:
    dataset = load_dataset(corpus_dir, split, queries)
    settings = ChunkSettings(target_tokens=chunk_tokens) if chunk_tokens else ChunkSettings()
    index_dir = CACHE / "indexes" / f"{corpus_dir.parent.name}-{corpus_dir.name}-{settings.target_tokens}-{settings.overlap_tokens}"
    embedder = CachedEmbedder()
    rows = []
    with Index.open(index_dir, embedder=embedder, chunking=settings) as index:
        for mode in modes:
            settings_tried = [(w, p) for w in weights for p in powers] if mode == "hybrid" else [(None, None)]
            for weight, power in settings_tried:
                if weight is not None:
                    search.KEYWORD_WEIGHT, search.KEYWORD_POWER = weight, power
                report = evaluate(index, dataset, mode=mode).to_dict()
                label = f"{name} {mode}" + (f" (rrf k={RRF_K:g})" if mode == "hybrid" and RRF_K is not None else "")
                if weight is not None and len(settings_tried) > 1:
                    label += f" w={weight:g} p={power:g}"
                rows.append((label, report))
                print(_line(label, report), flush=True)
        chunks = index.status().chunks
    print(f"  ({len(dataset.corpus)} documents, {chunks} chunks, {len(dataset.queries)} queries, "
          f"{embedder.computed} texts embedded in this run)", flush=True)
    return rows


def _line(label: str, report: dict) -> str:
    extra = f"  p50 {report['latency_p50_ms']:.1f} ms" if "latency_p50_ms" in report else ""
    return (f"{label:<34} nDCG@10 {report['ndcg@10']:.4f}  MRR@10 {report['mrr@10']:.4f}  "
            f"R@10 {report['recall@10']:.4f}  R@100 {report['recall@100']:.4f}{extra}")


def scifact(args) -> None:
    folder = DATA / "scifact"
    if args.baseline:
        started = time.perf_counter()
        report = whole_document_baseline(load_dataset(folder, args.split), CachedEmbedder())
        print(_line(f"scifact {args.split} whole-abstract baseline", report) + f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    run_modes(f"scifact {args.split}", folder, args.split, args.weights, args.powers, args.chunk_tokens)


def xquad(args) -> None:
    for language in args.languages:
        run_modes(f"xquad {language}", DATA / "xquad" / language, "test", args.weights, args.powers, args.chunk_tokens)
    for pair in args.cross:
        source, target = pair.split(":")
        run_modes(f"xquad {source}→{target}", DATA / "xquad" / target, "test", args.weights, args.powers,
                  args.chunk_tokens, queries=DATA / "xquad" / source)


def sample(args) -> None:
    folder = REPO / "sample_docs"
    cases = json.loads((REPO / "tests" / "sample_queries.json").read_text())
    with Index.open(CACHE / "indexes" / "sample_docs", embedder=CachedEmbedder()) as index:
        index.add([folder])
        for weight in args.weights:
            for power in args.powers:
                search.KEYWORD_WEIGHT, search.KEYWORD_POWER = weight, power
                missed, leads = [], []
                for case in cases:
                    first, margin = lead(index, case["query"], folder, case["expected"])
                    if first:
                        leads.append(margin)
                    else:
                        missed.append(case["query"])
                fusion = f"rrf k={args.rrf:g}" if args.rrf is not None else f"w={weight:g} p={power:g}"
                print(f"sample {fusion}  first: {len(leads)}/{len(cases)}"
                      + (f"  smallest lead {min(leads):.6f}" if leads else "")
                      + (f"  missed: {'; '.join(missed)}" if missed else ""), flush=True)


# Set by --rrf: hybrid rows are then reciprocal rank fusion with this k.
RRF_K: float | None = None


def lead(index: Index, query: str, folder: Path, expected: str) -> tuple[bool, float]:
    """Whether the expected document comes first, and by how much its best hit outscores
    the next document's (infinite when no other document is found)."""
    best: dict[str, float] = {}
    for hit in index.search(query, limit=10, per_file=1):
        best.setdefault(os.path.relpath(hit.path, folder), hit.score)
    ranked = list(best)
    if not ranked or ranked[0] != expected:
        return False, 0.0
    return True, best[expected] - best[ranked[1]] if len(ranked) > 1 else float("inf")


def reciprocal_rank_fusion(k: float):
    """A stand-in for `search.fuse`: the sum of 1/(k + rank) over the lists a chunk is in."""

    def fuse(dense: search.Ranking, keyword: search.Ranking) -> list[tuple[int, float]]:
        fused: dict[int, float] = {}
        for ranking in (dense, keyword):
            for rank, chunk_id in enumerate(ranking.ids, 1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
        return sorted(fused.items(), key=lambda item: -item[1])

    return fuse


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("k must be 0 or more")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["scifact", "xquad", "sample", "all"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--weights", type=lambda s: [float(w) for w in s.split(",")], default=[search.KEYWORD_WEIGHT])
    parser.add_argument("--powers", type=lambda s: [float(p) for p in s.split(",")], default=[search.KEYWORD_POWER])
    parser.add_argument("--chunk-tokens", type=int)
    parser.add_argument("--rrf", type=non_negative, metavar="K", help="hybrid by reciprocal rank fusion with this k (≥ 0)")
    parser.add_argument("--baseline", action="store_true", help="also the whole-abstract dense baseline (SciFact)")
    parser.add_argument("--languages", type=lambda s: s.split(","), default=["en", "de", "zh"])
    parser.add_argument("--cross", type=lambda s: [p for p in s.split(",") if p], default=["de:en"])
    args = parser.parse_args()
    if args.rrf is not None:
        global RRF_K
        RRF_K = args.rrf
        search.fuse = reciprocal_rank_fusion(args.rrf)
        args.weights, args.powers = [search.KEYWORD_WEIGHT], [search.KEYWORD_POWER]
    if args.what in ("scifact", "all"):
        if args.what == "all":
            args.baseline = True
        scifact(args)
    if args.what in ("xquad", "all"):
        xquad(args)
    if args.what in ("sample", "all"):
        sample(args)


if __name__ == "__main__":
    main()
