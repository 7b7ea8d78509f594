"""Indexing many small files: the pipeline's cost per file, against plain reading and the service.

    python benchmarks/small_files.py [--files 20000] [--runs 2] [--services free,slow,ionos]

The corpus is `--files` one-paragraph `.txt` notes in 20 folders, one chunk each, written
once under $TMPDIR/semsearch-benchmarks/small-files/. Printed, in one run:

- plain: walking, reading, decoding (UTF-8) and hashing (blake2b) the files in plain Python,
  warm cache: the floor any indexer pays;
- for each service, a fresh `semsearch index` process (model BAAI/bge-m3) against the
  loopback OpenAI-compatible server of the tests (`tests/openai_server.py`, in its own
  process): `free` answers at once with no rate limit, `slow` in 20 ms with no rate limit,
  `ionos` as the IONOS AI Model Hub does (5 requests/s, burst 10, at most 256 inputs a
  request, 40 ms + 1 ms per input, 5% random 500s). Files/s, the ratio to plain reading, the
  share of the rate limit's ceiling reached, chunks lost and chunks embedded twice, and where
  the time went by stage (timers around the pipeline's steps, in the child process; the
  reader and embedding stages run on threads of their own, so stages overlap);
- floors (`--floors`, after the first run of the first service): what a fresh process pays
  before reading a file, `import openai` (the client the remote models go through) and
  `import semsearch.apps.cli` in processes of their own, best of 3 (wall and CPU); and what
  SQLite alone needs to store the run's rows (documents, chunks, vectors and the FTS5 keyword
  entries, copied by `INSERT ... SELECT` from the run's index into an empty one of the same
  schema in one transaction: no Python per row);
- `Index.add_texts` of `--records` short records with an embedder that costs nothing;
- a no-change re-index of `--reindex` files: `Index.add` in-process and a fresh process.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
# --code DIR: measure the semsearch package in DIR (another checkout's, for a before/after
# comparison in one run); the server and this script stay as they are here.
if "--code" in sys.argv:
    os.environ["BENCHMARK_CODE"] = str(Path(sys.argv[sys.argv.index("--code") + 1]).resolve())
    os.environ["PYTHONPATH"] = os.environ["BENCHMARK_CODE"] + os.pathsep + os.environ.get("PYTHONPATH", "")
if os.environ.get("BENCHMARK_CODE"):
    sys.path.insert(0, os.environ["BENCHMARK_CODE"])

MODEL = "BAAI/bge-m3"
TOKEN = "benchmark-token"
FOLDERS = 20
FOLDER = Path(tempfile.gettempdir()) / "semsearch-benchmarks" / "small-files"

SERVICES = {
    # No limit the client should respect: it is told of a generous one.
    "free": dict(server={"cheap_vectors": True}, rps=1000.0, burst=1000),
    "slow": dict(server={"cheap_vectors": True, "latency": 0.020}, rps=1000.0, burst=1000),
    "ionos": dict(
        server={"rate": 5.0, "burst": 10, "latency": 0.040, "latency_per_input": 0.001, "max_batch": 256,
                "batch_status": 413, "error_rate": 0.05},
        rps=5.0, burst=10,
    ),
}


# -- the corpus ---------------------------------------------------------------------------


def corpus(files: int) -> Path:
    """`files` notes of one paragraph in 20 folders (written once, then reused)."""
    root = FOLDER / f"notes-{files}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(19)
    vocabulary = ["".join(rng.choices("abcdefghiklmnoprstuvwy", k=rng.randint(3, 9))) for _ in range(4000)]
    per_folder = -(-files // FOLDERS)
    for number in range(files):
        folder = root / f"folder{number // per_folder:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        words = " ".join(rng.choices(vocabulary, k=rng.randint(40, 90)))
        (folder / f"note{number:05d}.txt").write_text(f"Note {number}: {words}.\n", encoding="utf-8")
    (root / ".complete").write_text("")
    return root


def plain_read(root: Path) -> tuple[int, float]:
    """Files and seconds to walk, read, decode and hash everything under `root`."""
    import hashlib

    started = time.perf_counter()
    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name.startswith("."):
                continue
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            data.decode("utf-8")
            hashlib.blake2b(data, digest_size=16).digest()
            count += 1
    return count, time.perf_counter() - started


# -- the indexing process, with timers ----------------------------------------------------

# What is timed in the child, and how it is labelled.
TIMED = [
    ("Index", "open"), ("plan", "plan"), ("Reader", "file"), ("Reader", "chunk"), ("Pipeline", "_embed"), ("Pipeline", "_accept"),
    ("LocalWriter", "commit"), ("LocalWriter", "_follow"), ("Pipeline", "_run"), ("LocalBackend", "_tidy"),
]
STAGES = [
    "opening the index (a new one: import openai, the model's first answer)",
    "walk and compare (main thread)",
    "read, decode, chunk (reader thread; 0: in other processes)",
    "  of which chunking",
    "embedding requests (worker threads, summed)",
    "taking items (main thread)",
    "SQLite commits (main thread)",
    "  of which FAISS follows",
    "pipeline run (main thread, all of it)",
    "after the run: vector index, statistics, save",
    "imports before the command",
    "first commit, from the start of the script",
    "process, from the start of the script",
]


def child(stages_file: str, arguments: list[str]) -> None:
    """Run `semsearch index ...` in this process with timers around the pipeline's steps."""
    import threading

    started = time.perf_counter()
    from semsearch import Index
    from semsearch.apps import cli as cli_module
    from semsearch.indexing import pipeline, plan, reading
    from semsearch.storage.local import LocalBackend
    from semsearch.storage.local.writer import LocalWriter

    imported = time.perf_counter() - started
    totals: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            begun = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    totals[label] += time.perf_counter() - begun
                    calls[label] += 1

        setattr(owner, name, wrapper)

    for (owner, name), label in zip(TIMED, STAGES):
        timed({"Index": Index, "plan": plan, "Reader": reading.Reader, "Pipeline": pipeline.Pipeline, "LocalWriter": LocalWriter,
               "LocalBackend": LocalBackend}[owner], name, label)
    commit = LocalWriter.commit

    def first_commit(*args, **kwargs):
        totals.setdefault("first commit, from the start of the script", time.perf_counter() - started)
        return commit(*args, **kwargs)

    LocalWriter.commit = first_commit  # type: ignore[method-assign]
    try:
        cli_module.cli.main(args=arguments, prog_name="semsearch", standalone_mode=False)
    finally:
        totals["imports before the command"] = imported
        totals["process, from the start of the script"] = time.perf_counter() - started
        Path(stages_file).write_text(json.dumps({"seconds": totals, "calls": calls}))


def run_index(corpus_root: Path, service: str, work: Path, extra: list[str] | None = None) -> dict:
    """A fresh `semsearch index` process against one kind of service; its figures."""
    from remote_throughput import ServerProcess

    spec = SERVICES[service]
    settings = dict(token=TOKEN, seed=3, **spec["server"])
    index_dir = work / f"index-{service}"
    shutil.rmtree(index_dir, ignore_errors=True)
    stages_file = work / f"stages-{service}.json"
    env = {
        **os.environ, "SEMSEARCH_INDEX": str(index_dir), "SEMSEARCH_MODEL": MODEL,
        "IONOS_API_TOKEN": TOKEN, "XDG_STATE_HOME": str(work / f"state-{service}"),
    }
    shutil.rmtree(work / f"state-{service}", ignore_errors=True)
    with ServerProcess(**settings) as server:
        env["SEMSEARCH_BASE_URL"] = server.url
        arguments = ["index", str(corpus_root), "--json", "--rps", str(spec["rps"]), "--burst", str(spec["burst"]), *(extra or [])]
        # `python -c`, as a program with no script of its own, like `semsearch`: processes
        # that read files for it need not import a main script.
        code = (
            f"import sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); import small_files; "
            f"small_files.child({str(stages_file)!r}, {arguments!r})"
        )
        command = [sys.executable, "-c", code]
        cpu_before = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=work)
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        report = server.report()
    if done.returncode != 0:
        raise SystemExit(f"semsearch index failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    with sqlite3.connect(index_dir / "index.db") as db:
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        with_vector = db.execute("SELECT count(*) FROM chunks JOIN vectors ON vectors.id = chunks.vector_id").fetchone()[0]
    return {
        "seconds": seconds, "cpu": cpu, "summary": summary, "chunks": chunks, "lost": chunks - with_vector,
        "twice": report["twice"], "requests": report["embedding_requests"],
        "statuses": report["statuses"], "request_times": report["request_times"], "started": started,
        "stages": json.loads(stages_file.read_text()), "index_dir": index_dir, "env": env,
    }


def _children_cpu() -> float:
    """CPU seconds of the child processes that have ended: the indexing process and the
    processes it started (not the server, which runs on)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def describe(service: str, result: dict, files: int, plain: float) -> list[str]:
    seconds = result["seconds"]
    lines = [
        f"{service}: {files} files in {seconds:.2f} s = {files / seconds:,.0f} files/s, "
        f"{seconds / plain:.1f}x plain reading; CPU {result['cpu']:.2f} s; {result['chunks']} chunks, lost {result['lost']}, "
        f"embedded twice {result['twice']}; {result['requests']} requests "
        f"({dict(sorted(result['statuses'].items()))})"
    ]
    if service.startswith("ionos"):
        spec = SERVICES["ionos"]
        ceiling = spec["rps"] * spec["server"]["max_batch"]
        rate = result["chunks"] / seconds
        lines.append(f"  {rate:,.0f} chunks/s against a ceiling of {ceiling:,.0f} (5 req/s x 256): {rate / ceiling:.1%}")
    seconds, calls = result["stages"]["seconds"], result["stages"]["calls"]
    for label in STAGES:
        count = f" ({calls[label]:,} calls)" if label in calls else ""
        lines.append(f"  {label:<60} {seconds.get(label, 0.0):6.2f} s{count}")
    return lines


# -- floors: what any run of this design pays --------------------------------------------


def reference_loop() -> float:
    """Best of 3 of one fixed stretch of interpreter work (summing 10 million integers): the
    same machine runs at different speeds on different days, and this says how fast it is now."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(range(10_000_000))
        best = min(best, time.perf_counter() - started)
    return best


def import_floor(module: str) -> tuple[float, float]:
    """Best of 3 fresh processes importing `module`: (wall s, CPU s)."""
    import resource

    best = (float("inf"), float("inf"))
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        best = min(best, (wall, cpu))
    return best


def sqlite_floor(index_dir: Path, work: Path) -> dict[str, float]:
    """Seconds SQLite needs to store the rows of the index at `index_dir` again, in one
    transaction of INSERT ... SELECT into an empty database of the same schema (WAL,
    synchronous=NORMAL, the same page cache): each table's part and the commit."""
    source = index_dir / "index.db"
    target = work / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(source)
    # The FTS5 table's shadow tables are made by its own CREATE VIRTUAL TABLE.
    schema = [row[0] for row in db.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'chunks_fts_%' AND name != 'sqlite_sequence'"
        " ORDER BY type = 'index'"
    )]
    db.close()
    db = sqlite3.connect(target, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-32768")
    for statement in schema:
        db.execute(statement)
    db.execute("ATTACH ? AS source", [str(source)])
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    db.execute("BEGIN")
    for table in ("documents", "vectors", "chunks"):
        begun = time.perf_counter()
        db.execute(f"INSERT INTO main.{table} SELECT * FROM source.{table}")
        seconds[table] = time.perf_counter() - begun
    begun = time.perf_counter()
    # The keyword entries of a note are its text (no context header: one section, no title).
    db.execute("INSERT INTO chunks_fts (rowid, body) SELECT id, coalesce(context || ' ', '') || text FROM main.chunks")
    seconds["keywords (FTS5)"] = time.perf_counter() - begun
    begun = time.perf_counter()
    db.execute("COMMIT")
    seconds["commit"] = time.perf_counter() - begun
    seconds["all"] = time.perf_counter() - started
    db.close()
    return seconds


def print_floors(index_dir: Path, work: Path, plain: float) -> None:
    for module in ("openai", "semsearch.apps.cli"):
        wall, cpu = import_floor(module)
        print(f"floor: a fresh process importing {module}: {wall:.3f} s wall, {cpu:.3f} s CPU ({wall / plain:.1f}x plain reading; best of 3)")
    parts = sqlite_floor(index_dir, work)
    print(f"floor: SQLite storing the run's rows, one transaction of INSERT ... SELECT: {parts['all']:.3f} s "
          f"({parts['all'] / plain:.1f}x plain reading): " + ", ".join(f"{name} {value:.3f} s" for name, value in parts.items() if name != "all"))


# -- add_texts and re-indexing -------------------------------------------------------------


class FreeEmbedder:
    """Vectors that cost next to nothing: one coordinate per text, from its length."""

    model_id = "free"
    dimensions = 64
    batch_size = 256

    def embed_documents(self, texts):
        import numpy as np

        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        matrix[np.arange(len(texts)), [len(text) % self.dimensions for text in texts]] = 1.0
        return matrix

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def add_texts(records: int, work: Path) -> tuple[float, int]:
    from semsearch import Index

    rng = random.Random(5)
    words = "ticket login error printer invoice backup network release update window calendar budget".split()
    ids = [f"ticket-{n}" for n in range(records)]
    texts = [f"Ticket {n}: " + " ".join(rng.choices(words, k=12)) for n in range(records)]
    index_dir = work / "index-records"
    shutil.rmtree(index_dir, ignore_errors=True)
    with Index.open(index_dir, embedder=FreeEmbedder()) as index:
        started = time.perf_counter()
        stats = index.add_texts(ids, texts)
        seconds = time.perf_counter() - started
    return seconds, stats.chunks_added


def reindex(corpus_root: Path, files: int, work: Path) -> tuple[int, float, float, float]:
    """A no-change re-index of the first `files` notes: (files, first run s, in-process s, fresh process s)."""
    from remote_throughput import ServerProcess

    subset = work / "reindex-corpus"
    if not subset.exists():
        names = sorted(path for path in corpus_root.rglob("*.txt"))[:files]
        for path in names:
            target = subset / path.relative_to(corpus_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    index_dir = work / "index-reindex"
    shutil.rmtree(index_dir, ignore_errors=True)
    with ServerProcess(token=TOKEN, cheap_vectors=True) as server:
        env = {
            **os.environ, "SEMSEARCH_INDEX": str(index_dir), "SEMSEARCH_MODEL": MODEL, "IONOS_API_TOKEN": TOKEN,
            "SEMSEARCH_BASE_URL": server.url, "XDG_STATE_HOME": str(work / "state-reindex"),
        }
        command = [sys.executable, "-m", "semsearch", "index", str(subset), "--json", "--rps", "1000", "--burst", "1000"]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=work)
        first = time.perf_counter() - started
        from semsearch import Index

        with Index.open(index_dir, base_url=server.url, api_key=TOKEN) as index:
            started = time.perf_counter()
            stats = index.add([subset])
            in_process = time.perf_counter() - started
        assert stats.unchanged == files and stats.chunks_embedded == 0, stats
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=work)
        fresh = time.perf_counter() - started
    return files, first, in_process, fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--services", default="free,slow,ionos")
    parser.add_argument("--records", type=int, default=100_000, help="records for add_texts (0: skip)")
    parser.add_argument("--reindex", type=int, default=10_000, help="files for the no-change re-index (0: skip)")
    parser.add_argument("--floors", action="store_true", help="also print what a fresh process and SQLite alone cost")
    parser.add_argument("--code", help="a folder holding the semsearch package to measure (default: this checkout's)")
    args = parser.parse_args()

    root = corpus(args.files)
    import semsearch

    print(f"semsearch from {Path(semsearch.__file__).parent}")
    print(f"corpus: {args.files} one-paragraph .txt notes in {FOLDERS} folders ({root}); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {reference_loop():.3f} s for a reference loop")
    with tempfile.TemporaryDirectory(prefix="semsearch-small-") as tmp:
        work = Path(tmp)
        plain_read(root)  # warms the page cache
        counted, plain = min((plain_read(root) for _ in range(3)), key=lambda pair: pair[1])
        print(f"plain walk+read+decode+hash: {counted} files in {plain:.3f} s = {counted / plain:,.0f} files/s (best of 3, warm)")
        services = [name for name in args.services.split(",") if name]
        for service in services:
            results = []
            for number in range(args.runs):
                results.append(run_index(root, service, work))
                for line in describe(f"{service} run {number + 1}", results[-1], args.files, plain):
                    print(line, flush=True)
                if args.floors and number == 0 and service == services[0]:
                    print_floors(results[-1]["index_dir"], work, plain)
            if len(results) > 1:
                rates = [args.files / r["seconds"] for r in results]
                print(f"{service}: median {statistics.median(rates):,.0f} files/s (min {min(rates):,.0f}, max {max(rates):,.0f})")
        if args.records:
            seconds, added = add_texts(args.records, work)
            print(f"add_texts: {args.records} records ({added} chunks) in {seconds:.2f} s = {args.records / seconds:,.0f} records/s")
        if args.reindex:
            files, first, in_process, fresh = reindex(root, args.reindex, work)
            print(f"re-index, nothing changed: {files} files; first build {first:.2f} s (fresh process, free service); "
                  f"again in-process {in_process:.3f} s, in a fresh process {fresh:.2f} s")


if __name__ == "__main__":
    main()
