"""What reranking adds to a query's time, against a loopback rerank endpoint.

    python benchmarks/rerank.py [--runs 5] [--depth 40] [--latency 0] [--mode hybrid] [--hashed]
    python benchmarks/rerank.py --depths ../shared/data/scifact [--split test]

sample_docs/ is indexed with the bundled model (with `--hashed`, the tests' hashed bag of
words, which takes no time to embed: the second stage costs the same); each of the 20 sample questions
(tests/sample_queries.json) is searched `--runs` times without reranking and with it,
alternately, through one `Index`. The rerank endpoint is the tests' loopback
OpenAI-compatible server (`tests/openai_server.py`) in a process of its own, as the real
service is, answering each request after `--latency` seconds with scores by a known rule
(the share of the query's words a passage holds).

It prints, per query, the median and 95th-percentile time without and with reranking and
the difference: semsearch's own cost of the second stage (candidates read to the rerank
depth, passages cut to the model's input limit, one request built, sent over loopback,
parsed, blended) plus the `--latency` given. On a busy machine the difference of two
searches is noisy, so the second stage is also timed on its own ("second stage": the
rerank call and the blend over the first stage's candidates, read beforehand). The figures measure mechanics and overhead,
not quality: a reranker that scores by word overlap says nothing about what a real rerank
model would do to the ranking.

`--depths DATASET` measures what bounds any reranker's gain instead: the share of the
relevant documents that the first stage puts within the top k (recall@k), for the depths a
reranker might read. It uses keyword search (BM25), which needs no embedding model, so that
it runs in a minute; the hybrid first stage would need the corpus embedded by the model (most
of an hour on two cores). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOKEN = "benchmark-token"


def _serve(connection, latency: float) -> None:
    from tests.openai_server import OpenAIServer

    with OpenAIServer(token=TOKEN, rerank_latency=latency) as server:
        connection.send(server.url)
        while connection.recv() == "report":
            with server.lock:
                bodies = [json.dumps(body).encode() for body in server.reranks]
                connection.send({
                    "requests": len(server.reranks),
                    "documents": sum(len(body["documents"]) for body in server.reranks),
                    "bytes": sum(len(body) for body in bodies),
                })


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="searches of each question, each way")
    parser.add_argument("--depth", type=int, default=40, help="candidates sent to the reranker")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the endpoint takes to answer")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "keyword"])
    parser.add_argument("--hashed", action="store_true", help="index with the tests' hashed embedder, not the model")
    parser.add_argument("--depths", type=Path, metavar="DATASET", help="first-stage recall at depths on a BEIR dataset")
    parser.add_argument("--split", default="test")
    options = parser.parse_args()
    if options.depths:
        depths(options.depths, options.split)
        return

    from semsearch import Index
    from semsearch.search.rerank import rerank_results

    queries = [item["query"] for item in json.loads((REPO / "tests" / "sample_queries.json").read_text())]
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(child, options.latency), daemon=True)
    process.start()
    url = parent.recv()
    with tempfile.TemporaryDirectory(prefix="semsearch-rerank-") as scratch:
        os.environ["XDG_STATE_HOME"] = scratch
        started = time.perf_counter()
        if options.hashed:
            from tests.conftest import FakeEmbedder

            model = {"embedder": FakeEmbedder("hashed", 384)}
        else:
            model = {"model": "local"}
        index = Index.open(Path(scratch) / "index", base_url=url, api_key=TOKEN, rps=1000.0, burst=1000, **model)
        stats = index.add([REPO / "sample_docs"])
        print(f"indexed sample_docs: {stats.chunks_added} chunks in {time.perf_counter() - started:.1f} s")
        # Warm up both paths (the model, the vector cache, openai's import, the connection).
        index.search(queries[0], mode=options.mode, rerank=False)
        index.search(queries[0], mode=options.mode, rerank=True, rerank_depth=options.depth)
        parent.send("report")
        before = parent.recv()
        plain: list[float] = []
        reranked: list[float] = []
        fell_back = 0
        for _ in range(options.runs):
            for query in queries:
                for rerank in (False, True):
                    started = time.perf_counter()
                    results = index.search(query, mode=options.mode, rerank=rerank, rerank_depth=options.depth)
                    elapsed = (time.perf_counter() - started) * 1000
                    (reranked if rerank else plain).append(elapsed)
                    fell_back += rerank and not results.reranked
        parent.send("report")
        after = parent.recv()
        alone: list[float] = []
        for _ in range(options.runs):
            for query in queries:
                candidates = index.search(query, mode=options.mode, limit=options.depth, rerank=False)
                started = time.perf_counter()
                rerank_results(index.reranker, query, list(candidates), options.depth)
                alone.append((time.perf_counter() - started) * 1000)
        index.close()
    parent.send("stop")
    process.join(timeout=5)

    requests = after["requests"] - before["requests"]
    documents = (after["documents"] - before["documents"]) / max(requests, 1)
    size = (after["bytes"] - before["bytes"]) / max(requests, 1) / 1024
    overhead = [with_ - without for with_, without in zip(reranked, plain)]
    print(f"{len(plain)} searches each way, mode {options.mode}, depth {options.depth}, "
          f"endpoint latency {options.latency * 1000:.0f} ms; {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"rerank requests {requests} ({fell_back} fell back), {documents:.1f} passages and {size:.1f} KB each")
    for name, values in (("without", plain), ("with", reranked), ("overhead", overhead), ("second stage", alone)):
        print(f"{name:<12} median {statistics.median(values):7.2f} ms   p95 {_percentile(values, 0.95):7.2f} ms")


def depths(folder: Path, split: str) -> None:
    from semsearch import Index
    from semsearch.evaluation import load_dataset, recall_at
    from tests.conftest import FakeEmbedder

    data = load_dataset(folder, split)
    ks = (10, 20, 30, 40, 50, 100)
    found = {k: 0.0 for k in ks}
    with tempfile.TemporaryDirectory(prefix="semsearch-depths-") as scratch:
        with Index.open(Path(scratch) / "index", embedder=FakeEmbedder("hashed", 64)) as index:
            ids = list(data.corpus)
            index.add_texts(ids, [data.corpus[i][1] for i in ids],
                            [{"title": data.corpus[i][0]} if data.corpus[i][0] else None for i in ids])
            for query_id, text in data.queries.items():
                ranked = [hit.path for hit in index.search(text, limit=100, per_file=1, mode="keyword", rerank=False)]
                for k in ks:
                    found[k] += recall_at(ranked, data.qrels[query_id], k)
    print(f"{folder} ({split}, {len(data.queries)} queries), keyword search: recall of the first stage at depth k")
    print("  ".join(f"@{k} {found[k] / len(data.queries):.4f}" for k in ks))


if __name__ == "__main__":
    main()
