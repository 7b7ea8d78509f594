"""semsearch side by side with txtai and llm on SciFact, the same embedding function in each.

    /work/peers-venv/bin/python benchmarks/peers.py [--split test] [--runs 3]

Run it in a separate environment holding the peers (never semsearch's own dependencies):

    python -m venv /work/peers-venv
    /work/peers-venv/bin/pip install torch==2.13.0      # first: the CPU build, not CUDA's gigabytes
    /work/peers-venv/bin/pip install txtai llm -e .

Every engine gets the same embedding function: the bundled local model (multilingual-e5-small)
through benchmarks/retrieval.py's `CachedEmbedder`, whose vectors are kept on disk by text, so
the figures compare engines, not the model (texts not cached yet are embedded once, before any
timing). Documents are indexed as "title\\n\\ntext", queries with e5's "query: " prefix and
passages with "passage: ", in every engine:

- semsearch: `Index.add_texts` then `Index.search` (hybrid, the default, and dense), in-process.
- txtai: `Embeddings(method="external", transform=...)` with e5's instructions, content stored,
  FAISS backend; `index` then `search`, in-process; also with `hybrid=True` (BM25 + dense),
  and "txtai-exact" with FAISS `IDMap,Flat` (txtai's default above 5,000 vectors is an IVF
  probing a sixteenth of its cells, which SciFact's 5,183 abstracts pass).
- llm: an embedding model registered through a plugin (`llm.hookimpl`), `Collection.embed_multi`
  (what `llm embed-multi` calls) then `Collection.similar_by_vector` (what `llm similar` calls
  after embedding the query), in-process through the Python API, as the CLI adds only start-up.

Index time is the best of `--runs`; query p50 is over every query of the split; nDCG@10 is
computed with `semsearch.evaluation.ndcg_at` for all. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from retrieval import DATA, CachedEmbedder  # noqa: E402
from synthetic import machine, quiet_machine  # noqa: E402

from semsearch import Index  # noqa: E402
from semsearch.evaluation import load_dataset, ndcg_at  # noqa: E402

embedder = CachedEmbedder()


def document_text(title: str, text: str) -> str:
    return f"{title}\n\n{text}".strip()


# -- engines ----------------------------------------------------------------------------------


def run_semsearch(dataset, mode: str, scratch: Path):
    ids = list(dataset.corpus)
    directory = scratch / f"semsearch-{mode}-{time.monotonic_ns()}"
    started = time.perf_counter()
    index = Index.open(directory, embedder=embedder)
    index.add_texts(ids, [dataset.corpus[i][1] for i in ids], [{"title": dataset.corpus[i][0]} if dataset.corpus[i][0] else None for i in ids])
    seconds = time.perf_counter() - started

    def search(query: str) -> list[str]:
        return [hit.path for hit in index.search(query, limit=10, mode=mode, per_file=1)]

    return seconds, search, index.close


def _txtai_transform(texts: list[str]) -> np.ndarray:
    queries = [t.startswith("query: ") for t in texts]
    if all(queries):
        return np.stack([embedder.embed_query(t[len("query: "):]) for t in texts])
    return embedder.embed_documents([t[len("passage: "):] for t in texts])


def run_txtai(dataset, hybrid: bool, scratch: Path, exact: bool = False):
    from txtai import Embeddings

    ids = list(dataset.corpus)
    started = time.perf_counter()
    embeddings = Embeddings(
        method="external", transform=_txtai_transform, content=True, backend="faiss", hybrid=hybrid,
        instructions={"query": "query: ", "data": "passage: "},
        # txtai's default above 5,000 vectors is an IVF probing 1/16 of its cells; "exact"
        # asks for the exact search semsearch does at this size.
        **({"faiss": {"components": "IDMap,Flat"}} if exact else {}),
    )
    embeddings.index([(i, document_text(*dataset.corpus[i]), None) for i in ids])
    seconds = time.perf_counter() - started

    def search(query: str) -> list[str]:
        return [row["id"] for row in embeddings.search(query, 10)]

    return seconds, search, embeddings.close


class _LlmPlugin:
    """Registers the cached local model with llm, as a plugin package would."""

    import llm

    class Model(llm.EmbeddingModel):
        model_id = "semsearch-local-cached"
        batch_size = 32

        def embed_batch(self, texts):
            for vector in embedder.embed_documents(list(texts)):
                yield [float(x) for x in vector]

    @staticmethod
    @llm.hookimpl
    def register_embedding_models(register):
        register(_LlmPlugin.Model())


def run_llm(dataset, scratch: Path):
    import llm
    import sqlite_utils

    if not llm.plugins.pm.has_plugin("semsearch-peers"):
        llm.plugins.pm.register(_LlmPlugin, name="semsearch-peers")
    ids = list(dataset.corpus)
    started = time.perf_counter()
    db = sqlite_utils.Database(scratch / f"llm-{time.monotonic_ns()}.db")
    collection = llm.Collection("scifact", db, model_id="semsearch-local-cached")
    collection.embed_multi(((i, document_text(*dataset.corpus[i])) for i in ids), store=True)
    seconds = time.perf_counter() - started

    def search(query: str) -> list[str]:
        return [entry.id for entry in collection.similar_by_vector(embedder.embed_query(query).tolist(), number=10)]

    return seconds, search, db.close


# -- measuring --------------------------------------------------------------------------------


def measure(name: str, start, dataset, runs: int, scratch: Path) -> dict:
    times = []
    for run in range(runs):
        seconds, search, close = start(scratch)
        times.append(seconds)
        if run < runs - 1:
            close()
    queries = list(dataset.queries.items())
    for _, text in queries[:10]:
        search(text)
    latencies, scores = [], []
    for query_id, text in queries:
        began = time.perf_counter()
        ranked = search(text)
        latencies.append(time.perf_counter() - began)
        scores.append(ndcg_at(ranked, dataset.qrels[query_id]))
    close()
    figures = {"name": name, "index": min(times), "p50": statistics.median(latencies) * 1e3, "ndcg": float(np.mean(scores))}
    print(f"{name:<22} index {figures['index']:6.2f} s   query p50 {figures['p50']:7.2f} ms   nDCG@10 {figures['ndcg']:.4f}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="test")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="comma-separated engines to run (semsearch,semsearch-dense,txtai,txtai-hybrid,txtai-exact,llm)")
    args = parser.parse_args()
    dataset = load_dataset(DATA / "scifact", args.split)
    with quiet_machine(), tempfile.TemporaryDirectory(prefix="semsearch-peers-") as folder:
        # Every vector the engines will ask for, computed (once, into the shared cache)
        # before anything is timed; benchmarks/retrieval.py, which fills the same cache, waits.
        # By length, so that a batch's texts are padded to about the same number of tokens.
        texts = sorted((document_text(*dataset.corpus[i]) for i in dataset.corpus), key=len)
        before = embedder.computed
        for start in range(0, len(texts), 32):
            embedder.embed_documents(texts[start : start + 32])
        for text in dataset.queries.values():
            embedder.embed_query(text)
        scratch = Path(folder)
        warm = Index.open(scratch / "warm", embedder=embedder)  # semsearch's chunk texts too
        ids = list(dataset.corpus)
        warm.add_texts(ids, [dataset.corpus[i][1] for i in ids], [{"title": dataset.corpus[i][0]} if dataset.corpus[i][0] else None for i in ids])
        warm.close()
        versions = f"txtai {_version('txtai')}, llm {_version('llm')}"
        print(f"SciFact {args.split}: {len(dataset.corpus)} documents, {len(dataset.queries)} queries; {machine()}, "
              f"{time.strftime('%Y-%m-%d')}; {versions}; {embedder.computed - before} texts embedded before timing", flush=True)
        engines = {
            "semsearch": lambda s: run_semsearch(dataset, "hybrid", s),
            "semsearch-dense": lambda s: run_semsearch(dataset, "dense", s),
            "txtai": lambda s: run_txtai(dataset, False, s),
            "txtai-hybrid": lambda s: run_txtai(dataset, True, s),
            "txtai-exact": lambda s: run_txtai(dataset, False, s, exact=True),
            "llm": lambda s: run_llm(dataset, s),
        }
        chosen = args.only.split(",") if args.only else list(engines)
        results = {}
        for name in chosen:
            results[name] = measure(name, engines[name], dataset, args.runs, scratch)
    if "semsearch" in results:
        ours = results["semsearch"]
        for name, theirs in results.items():
            if name.startswith("semsearch"):
                continue
            print(f"semsearch vs {name:<13} index time {ours['index'] / theirs['index']:.2f}×   "
                  f"query p50 {ours['p50'] / theirs['p50']:.3f}×   nDCG@10 {ours['ndcg'] - theirs['ndcg']:+.4f}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
