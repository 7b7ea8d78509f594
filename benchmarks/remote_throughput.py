"""Indexing throughput through a rate-limited embedding service, and whether anything is lost.

    python benchmarks/remote_throughput.py [--chunks 20000] [--runs 3] [--error-rate 0.05]

A loopback OpenAI-compatible server (`tests/openai_server.py`, in its own process, as the
real service is) behaves like the IONOS AI Model Hub: a token bucket of `--rps` requests a
second with bursts of `--burst`, answered past it with 429 and `Retry-After`; 40 ms + 1 ms
per input of latency; at most `--batch-cap` inputs per request (more: 413); optionally a
share of random 500s. A corpus of Markdown files with at least `--chunks` distinct chunks is
indexed through `Index.add` with model BAAI/bge-m3, so the whole pipeline runs: walking,
reading, chunking, embedding, SQLite and FAISS.

For each run it prints chunks, seconds, chunks/s, the ceiling (rps × batch cap), their
ratio, requests, 429s, 500s, retries, chunks lost (chunks of the corpus without a vector in
the index) and chunks embedded twice (texts the server embedded more than once), and
where the time went: until the first request, the span of the requests against the least
the rate limit allows for that many ("pacing"), and after the last (its answer, the last
commit, saving the vector index). The service's first `--burst` requests come at once, so
a short run can pass 100% of the ceiling; failed requests use up the rate limit too, so
with 5% errors about 95% is the most any long run can reach. openai is imported once before
the runs (a fresh process pays about 0.5-0.9 s for it). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import multiprocessing
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL = "BAAI/bge-m3"
TOKEN = "benchmark-token"


# -- the server, in a child process -------------------------------------------------------


def _serve(connection, settings: dict) -> None:
    from tests.openai_server import OpenAIServer

    with OpenAIServer(**settings) as server:
        connection.send(server.url)
        while connection.recv() == "report":
            with server.lock:
                texts = collections.Counter(
                    hashlib.blake2b(text.encode(), digest_size=16).digest() for text in server.texts
                )
                connection.send({
                    "embedding_requests": server.embedding_requests,
                    "statuses": collections.Counter(server.statuses),
                    "inputs": server.inputs,
                    "texts": sum(texts.values()),
                    "distinct": len(texts),
                    "twice": sum(count - 1 for count in texts.values() if count > 1),
                    "max_in_flight": server.max_in_flight,
                    "request_times": list(server.request_times),
                })


class ServerProcess:
    """`tests/openai_server.OpenAIServer` running in a child process; `report()` reads its counters."""

    def __init__(self, **settings) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, settings), daemon=True)

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.url: str = self._connection.recv()
        return self

    def report(self) -> dict:
        self._connection.send("report")
        return self._connection.recv()

    def __exit__(self, *exc_info: object) -> None:
        self._connection.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


# -- the corpus ---------------------------------------------------------------------------


def make_corpus(root: Path, chunks: int) -> tuple[int, int]:
    """Markdown files with at least `chunks` distinct chunks; (files, chunks) as the pipeline cuts them."""
    from semsearch.embedding.remote.client import RemoteEmbedder
    from semsearch.readers import read_document
    from semsearch.settings import ChunkSettings
    from semsearch.text.chunking import chunk_document

    model = RemoteEmbedder(MODEL, api_key="unused")  # its input limit and token counter
    rng = random.Random(7)
    vocabulary = ["".join(rng.choices("abcdefghijklmnoprstuvw", k=rng.randint(3, 10))) for _ in range(5000)]
    files = found = 0
    while found < chunks:
        lines = [f"# Report {files}\n"]
        for section in range(4):
            lines.append(f"\n## Part {files}.{section}\n")
            for paragraph in range(3):
                sentences = [
                    f"Item {files}-{section}-{paragraph}-{k} " + " ".join(rng.choices(vocabulary, k=rng.randint(8, 20))) + "."
                    for k in range(8)
                ]
                lines.append("\n" + " ".join(sentences) + "\n")
        folder = root / f"dir{files // 200:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"report{files:05d}.md"
        path.write_text("".join(lines), encoding="utf-8")
        pieces = chunk_document(
            read_document(path), ChunkSettings(), max_tokens=model.max_tokens, count_tokens=model.count_tokens
        )
        found += len({piece.hash for piece in pieces})
        files += 1
    return files, found


def chunks_with_vectors(index_dir: Path) -> tuple[int, int]:
    """(chunks, chunks whose vector is stored) in the index's database."""
    with sqlite3.connect(index_dir / "index.db") as db:
        total = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        with_vector = db.execute("SELECT count(*) FROM chunks JOIN vectors ON vectors.id = chunks.vector_id").fetchone()[0]
    return total, with_vector


# -- one run ------------------------------------------------------------------------------


def run_once(args: argparse.Namespace, corpus: Path, corpus_chunks: int, number: int) -> dict:
    from semsearch import Index

    settings = dict(
        token=TOKEN, rate=args.rps, burst=args.burst, retry_after=args.retry_after,
        latency=args.latency, latency_per_input=args.latency_per_input,
        max_batch=args.batch_cap, batch_status=413, error_rate=args.error_rate, seed=number,
    )
    options = {"rps": args.rps, "burst": args.burst}
    if args.concurrency:
        options["concurrency"] = args.concurrency
    with ServerProcess(**settings) as server, tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        with Index.open(index_dir, model=MODEL, base_url=server.url, api_key=TOKEN, **options) as index:
            cpu_before = _cpu_seconds()
            started = time.monotonic()
            stats = index.add([corpus])
            seconds = time.monotonic() - started
            cpu = _cpu_seconds() - cpu_before
        report = server.report()
        _, stored = chunks_with_vectors(index_dir)
    times = sorted(report["request_times"])
    usage = stats.usage
    ceiling = args.rps * args.batch_cap
    return {
        "chunks": stats.chunks_embedded,
        "seconds": seconds,
        "cpu": cpu,
        "rate": stats.chunks_embedded / seconds,
        "ratio": stats.chunks_embedded / seconds / ceiling,
        "requests": usage.requests,
        "server_requests": report["embedding_requests"],
        "rate_limited": report["statuses"].get(429, 0),
        "errors": report["statuses"].get(500, 0),
        "retries": usage.retries,
        "prompt_tokens": usage.prompt_tokens,
        "lost": corpus_chunks - stored,
        "twice": report["twice"],
        "max_in_flight": report["max_in_flight"],
        "first_request": times[0] - started if times else float("nan"),
        "span": times[-1] - times[0] if times else float("nan"),
        "after_last": started + seconds - times[-1] if times else float("nan"),
        # The fastest any client can send this many requests: a full bucket at once, then the rate.
        "bound": max(len(times) - args.burst, 0) / args.rps,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process: the client, not the server
    return usage.ru_utime + usage.ru_stime


def describe(number: int, result: dict, ceiling: float) -> str:
    r = result
    return (
        f"run {number}: {r['chunks']} chunks in {r['seconds']:.2f} s = {r['rate']:.0f} chunks/s; "
        f"ceiling {ceiling:.0f}; ratio {r['ratio']:.1%}\n"
        f"  requests {r['requests']} (server saw {r['server_requests']}), 429s {r['rate_limited']}, "
        f"500s {r['errors']}{_share(r)}, retries {r['retries']}, lost {r['lost']}, embedded twice {r['twice']}, "
        f"most in flight {r['max_in_flight']}, {r['prompt_tokens']} prompt tokens\n"
        f"  first request after {r['first_request']:.2f} s, requests spanned {r['span']:.2f} s "
        f"(the rate limit allows {r['bound']:.2f} s for {r['server_requests']}: pacing {r['bound'] / r['span']:.0%}), "
        f"{r['after_last']:.2f} s after the last; "
        f"client CPU {r['cpu']:.2f} s ({r['cpu'] / r['seconds']:.0%} of one core)"
    )


def _share(r: dict) -> str:
    if not r["errors"]:
        return ""
    failed = r["errors"] / r["server_requests"]
    return f" ({failed:.1%} of requests: at most {1 - failed:.1%} of the ceiling in a long run)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20_000, help="at least this many distinct chunks")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rps", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--batch-cap", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.040, help="seconds per request")
    parser.add_argument("--latency-per-input", type=float, default=0.001, help="seconds per input")
    parser.add_argument("--retry-after", type=float, default=1.0, help="the server's Retry-After in seconds")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default: the client's)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        # Batch sizes learned by earlier runs (or by the user's own) must not carry over.
        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        corpus = Path(tmp) / "corpus"
        files, corpus_chunks = make_corpus(corpus, args.chunks)
        ceiling = args.rps * args.batch_cap
        started = time.monotonic()
        import openai  # noqa: F401  (once, so that every run measures the same thing)

        print(f"openai imported in {time.monotonic() - started:.2f} s before the runs (a fresh `semsearch index` pays this once)")
        print(
            f"corpus: {files} files, {corpus_chunks} distinct chunks; server: {args.rps:g} req/s, burst {args.burst}, "
            f"Retry-After {args.retry_after:g} s, {args.latency * 1000:g} ms + {args.latency_per_input * 1000:g} ms/input, "
            f"at most {args.batch_cap} inputs, {args.error_rate:.0%} errors"
        )
        print(f"ceiling: {args.rps:g} req/s × {args.batch_cap} inputs = {ceiling:.0f} chunks/s; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        results = []
        for number in range(1, args.runs + 1):
            results.append(run_once(args, corpus, corpus_chunks, number))
            print(describe(number, results[-1], ceiling), flush=True)
        ratios = [r["ratio"] for r in results]
        print(
            f"median of {len(results)} runs: {statistics.median(r['rate'] for r in results):.0f} chunks/s, "
            f"ratio {statistics.median(ratios):.1%} (min {min(ratios):.1%}, max {max(ratios):.1%}); "
            f"lost {sum(r['lost'] for r in results)}, embedded twice {sum(r['twice'] for r in results)} in all runs"
        )


if __name__ == "__main__":
    main()
