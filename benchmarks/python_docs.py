"""Real documents nobody here wrote: the Python 3.11 documentation from Debian's python3.11-doc.

    apt-get install -y python3.11-doc
    python benchmarks/python_docs.py                                  # read + chunk + store the whole tree
    python benchmarks/python_docs.py --model local --subset tutorial howto faq   # + the real model, searches

Part 1 reads the whole tree (about 530 HTML pages and 500 reStructuredText sources) twice:
once file by file through the readers and the chunker alone, timed per format, and once
through `Index.add` with an embedder that costs nothing, so the figures are walking,
reading, chunking and storing without the model. Part 2 (with --model) indexes a subset
with a real model and prints sample searches with their snippets.

Prints every figure; benchmarks/README.md quotes them.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.errors import DocumentError
from semsearch.indexing.plan import READER_VERSION
from semsearch.readers import read_document
from semsearch.readers.walk import FileEntry, walk
from semsearch.settings import ChunkSettings
from semsearch.text.chunking import chunk_document
from semsearch.text.snippets import best_snippet

DOCS = Path("/usr/share/doc/python3.11/html")

QUERIES = [
    "how do I read a file line by line",
    "sort a list of dictionaries by one of their values",
    "why do default list arguments keep values between calls",
    "named groups in a regular expression",
    "fetch a web page over HTTP and read the response",
    "Wie prüfe ich, ob ein Schlüssel in einem Wörterbuch vorhanden ist?",
]


class FreeEmbedder:
    """Costs nothing: a fixed random vector per text. For timing everything but the model."""

    model_id = "free"
    dimensions = 32
    max_tokens = 512

    def __init__(self) -> None:
        self._random = np.random.default_rng(0)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        vectors = self._random.standard_normal((len(texts), self.dimensions)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def read_only(root: Path) -> None:
    """Walk, read and chunk every file, timed per format; nothing is stored."""
    files: dict[str, int] = defaultdict(int)
    chunks: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    size: dict[str, int] = defaultdict(int)
    refused: dict[str, int] = defaultdict(int)
    settings = ChunkSettings()
    started = time.perf_counter()
    for entry in walk([root]):
        if not isinstance(entry, FileEntry):
            continue
        begun = time.perf_counter()
        data = entry.path.read_bytes()
        try:
            document = read_document(entry.path, data)
        except DocumentError as exc:
            refused[str(exc)] += 1
            continue
        pieces = chunk_document(document, settings, max_tokens=FreeEmbedder.max_tokens)
        seconds[document.format] += time.perf_counter() - begun
        files[document.format] += 1
        chunks[document.format] += len(pieces)
        size[document.format] += len(data)
    total = time.perf_counter() - started
    print("Readers and chunker alone (no storage):")
    print(f"  {'format':<10}{'files':>7}{'MB':>8}{'chunks':>8}{'files/s':>9}{'MB/s':>7}")
    for kind in sorted(files, key=lambda k: -files[k]):
        print(
            f"  {kind:<10}{files[kind]:>7}{size[kind] / 2**20:>8.1f}{chunks[kind]:>8}"
            f"{files[kind] / seconds[kind]:>9.1f}{size[kind] / 2**20 / seconds[kind]:>7.2f}"
        )
    print(f"  all: {sum(files.values())} files, {sum(chunks.values())} chunks in {total:.1f} s "
          f"({sum(files.values()) / total:.1f} files/s, {sum(size.values()) / 2**20 / total:.2f} MB/s)")
    if refused:
        print(f"  refused by a reader: {dict(refused)}")


def full_pipeline(root: Path) -> None:
    """`Index.add` over the whole tree with an embedder that costs nothing."""
    with tempfile.TemporaryDirectory() as scratch, Index.open(Path(scratch) / "ix", embedder=FreeEmbedder()) as index:
        started = time.perf_counter()
        stats = index.add([root])
        seconds = time.perf_counter() - started
        files = stats.new + stats.changed + stats.unchanged
        print("Index.add, free embedder (walk, read, chunk, hash, SQLite, FAISS):")
        print(f"  {files} files indexed, {stats.chunks_added} chunks, in {seconds:.1f} s: {files / seconds:.1f} files/s, "
              f"{stats.chunks_added / seconds:.0f} chunks/s")
        print(f"  skipped {len(stats.skipped)}: {stats.skipped_by_reason}")
        for item in stats.skipped:
            print(f"    {os.path.relpath(item.path, root)}: {item.reason}")
        print(f"  ignored {len(stats.ignored)}: {stats.ignored_by_reason}")
        started = time.perf_counter()
        again = index.add([root])
        print(f"  second run (nothing changed): {again.unchanged} unchanged, {len(again.skipped)} skipped, "
              f"in {time.perf_counter() - started:.2f} s")


def with_model(root: Path, model: str, subset: list[str]) -> None:
    folders = [root / name for name in subset]
    with tempfile.TemporaryDirectory() as scratch, Index.open(Path(scratch) / "ix", model=model) as index:
        started = time.perf_counter()
        stats = index.add(folders)
        seconds = time.perf_counter() - started
        files = stats.new + stats.changed + stats.unchanged
        print(f"Model {model} on {', '.join(subset)}: {files} files, {stats.chunks_added} chunks "
              f"({stats.chunks_embedded} embedded) in {seconds:.0f} s: {files / seconds:.2f} files/s, "
              f"{stats.chunks_embedded / seconds:.1f} chunks/s; skipped {stats.skipped_by_reason}")
        for query in QUERIES:
            started = time.perf_counter()
            hits = index.search(query, limit=3)
            milliseconds = (time.perf_counter() - started) * 1000
            print(f"\n  Q: {query}   ({milliseconds:.0f} ms)")
            for rank, hit in enumerate(hits, 1):
                where = f"{os.path.relpath(hit.path, root)}:{hit.start_line}-{hit.end_line}"
                section = f" › {hit.section}" if hit.section else ""
                print(f"  {rank}. {where}{section}  ({hit.score:.3f})")
                snippet = getattr(hit, "snippet", None) or best_snippet(hit.text, query)[0]
                print(f"     {' '.join(snippet.split())[:240]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DOCS)
    parser.add_argument("--model", help="also index --subset with this model and run sample searches")
    parser.add_argument("--subset", nargs="+", default=["tutorial", "howto", "faq"])
    parser.add_argument("--skip-read", action="store_true", help="only the model part")
    args = parser.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"{args.root} is missing: apt-get install -y python3.11-doc")
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}, reader version {READER_VERSION}")
    print(f"Tree: {args.root}")
    if not args.skip_read:
        read_only(args.root)
        full_pipeline(args.root)
    if args.model:
        with_model(args.root, args.model, args.subset)


if __name__ == "__main__":
    main()
